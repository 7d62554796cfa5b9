"""Names fixed by the public contract (README.md: client id ``KIS``, venue ``KRX``, instrument ids
``<code>.KRX``, the KIS endpoints and settings defaults, the 41-registration cap)."""

from typing import Final

from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import Venue

from kis_adapter.krx import MAX_REGISTRATIONS as MAX_REGISTRATIONS  # one definition, in krx

KIS: Final = "KIS"
KIS_CLIENT_ID: Final = ClientId(KIS)
KRX_VENUE_NAME: Final = "KRX"
KRX_VENUE: Final = Venue(KRX_VENUE_NAME)

DEFAULT_WS_URL: Final = "ws://ops.koreainvestment.com:21000"
DEFAULT_REST_URL: Final = "https://openapi.koreainvestment.com:9443"
DEFAULT_STALL_TIMEOUT_SECS: Final = 60.0
DEFAULT_MASTER_URL: Final = "https://new.real.download.dws.co.kr/common/master/fo_stk_code_mts.mst.zip"
