"""
Example strategies on KIS data, the same code live (`kis-adapter live`) and in backtests.

- `strategies.auction_monitor.AuctionMonitor`: per contract and auction, the expected-price path,
  range, drift, final price and quantity, written as a table.
- `strategies.preopen_signal.PreOpenSignal`: at the end of the pre-open call, LONG / SHORT / FLAT
  from the gap to the previous close and the drift during the call.
- `strategies.gap_trader.GapTrader`: trades that signal at the opening auction — a protective limit
  in the last part of the pre-open call, filled at the opening print — and exits by its own rule.

What they share (config fields, subscriptions, telling auctions apart) is `kis_adapter.strategy_kit`,
re-exported here; the modules import it from the library and each other relatively, so they work
whatever else is called ``strategies`` on the user's path.
"""

from kis_adapter.strategy_kit import CLOSING_CODES as CLOSING_CODES
from kis_adapter.strategy_kit import END_CODES as END_CODES
from kis_adapter.strategy_kit import PRE_OPEN_CODES as PRE_OPEN_CODES
from kis_adapter.strategy_kit import Call as Call
from kis_adapter.strategy_kit import KISStrategyConfig as KISStrategyConfig
from kis_adapter.strategy_kit import classify_call as classify_call
from kis_adapter.strategy_kit import kst_clock as kst_clock
from kis_adapter.strategy_kit import kst_date_text as kst_date_text
from kis_adapter.strategy_kit import kst_day as kst_day
from kis_adapter.strategy_kit import kst_instant as kst_instant
from kis_adapter.strategy_kit import kst_seconds as kst_seconds
from kis_adapter.strategy_kit import parse_instrument_ids as parse_instrument_ids
from kis_adapter.strategy_kit import parse_kst_time as parse_kst_time
from kis_adapter.strategy_kit import subscribe_expected_fills as subscribe_expected_fills
