"""Names fixed by the public contract (README.md: client id ``KIS``, venue ``KRX``, instrument ids
``<code>.KRX``, the KIS endpoints and settings defaults, the 41-registration cap)."""

from typing import Final

from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import Venue

KIS: Final = "KIS"
KIS_CLIENT_ID: Final = ClientId(KIS)
KRX_VENUE_NAME: Final = "KRX"
KRX_VENUE: Final = Venue(KRX_VENUE_NAME)

DEFAULT_WS_URL: Final = "ws://ops.koreainvestment.com:21000"
DEFAULT_REST_URL: Final = "https://openapi.koreainvestment.com:9443"
DEFAULT_STALL_TIMEOUT_SECS: Final = 60.0

MAX_REGISTRATIONS: Final = 41  # hard cap of one KIS session, all TRs combined
