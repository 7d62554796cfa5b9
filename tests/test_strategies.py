"""The example strategies on hand-built KISExpectedFill sequences, run by a real BacktestEngine."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence

import pytest
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.data import CustomData
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.types import KISExpectedFill
from strategies import Call
from strategies import classify_call
from strategies import parse_kst_time
from strategies.auction_monitor import AuctionMonitor
from strategies.auction_monitor import AuctionMonitorConfig
from strategies.preopen_signal import CallState
from strategies.preopen_signal import Decision
from strategies.preopen_signal import PreOpenSignal
from strategies.preopen_signal import PreOpenSignalConfig
from strategies.preopen_signal import Side
from strategies.preopen_signal import evaluate

pytestmark = pytest.mark.filterwarnings("ignore:Timestamp.utcnow is deprecated")

KST = dt.timezone(dt.timedelta(hours=9))
A = InstrumentId.from_str("A11612.KRX")
B = InstrumentId.from_str("A50612.KRX")
C = InstrumentId.from_str("A3G612.KRX")


def kst_ns(hhmmss: str, date: str = "2026-11-24") -> int:
    moment = dt.datetime.fromisoformat(f"{date}T{hhmmss}").replace(tzinfo=KST)
    return int(moment.timestamp()) * 1_000_000_000


class Feed:
    """Build records the way the decoder does: prev close fixed per contract, ts_init 5 ms later."""

    def __init__(self, prev_close: dict[InstrumentId, float]) -> None:
        self.prev_close = prev_close
        self.records: list[KISExpectedFill] = []

    def add(
        self,
        iid: InstrumentId,
        hhmmss: str,
        price: float,
        phase: str = "311",
        quantity: int = 500,
        *,
        sign: int | None = None,
        date: str = "2026-11-24",
    ) -> KISExpectedFill:
        prev = self.prev_close[iid]
        change = price - prev
        if sign is None:
            sign = 5 if price == 0 or change < 0 else 2 if change > 0 else 3
        ts = kst_ns(hhmmss, date)
        record = KISExpectedFill(
            iid,
            price,
            change,
            sign,
            round(change / prev * 100, 2),
            phase,
            quantity,
            ts,
            ts + 5_000_000 + len(self.records),
        )
        self.records.append(record)
        return record


def run(records: Sequence[KISExpectedFill], *strategies: Strategy) -> None:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    try:
        engine.add_data(
            [CustomData(DataType(KISExpectedFill), r) for r in records], client_id=ClientId("KIS")
        )
        for strategy in strategies:
            engine.add_strategy(strategy)
        engine.run()
    finally:
        engine.dispose()


# -- SHARED HELPERS --------------------------------------------------------------------------------


def test_classify_call_with_known_codes_and_times_falls_back_to_time():
    """Known phase codes decide; unknown codes go by the KST time window."""
    assert classify_call("311", 15 * 3600) is Call.PRE_OPEN
    assert classify_call("129", 8 * 3600) is Call.CLOSING
    assert classify_call("", 8 * 3600 + 40 * 60) is Call.PRE_OPEN
    assert classify_call("999", 15 * 3600 + 40 * 60) is Call.CLOSING
    assert classify_call("999", 11 * 3600) is Call.OTHER


def test_parse_kst_time_with_bad_text_raises():
    """decision_time_kst accepts HH:MM:SS or HHMMSS and nothing else."""
    assert parse_kst_time("08:45:00") == parse_kst_time("084500") == 8 * 3600 + 45 * 60
    for bad in ("8:45", "24:00:00", "08:61:00", "abcdef"):
        with pytest.raises(ValueError):
            parse_kst_time(bad)


# -- AUCTION MONITOR -------------------------------------------------------------------------------


def test_auction_monitor_with_two_calls_zero_prices_and_legacy_layout_gives_exact_rows(tmp_path):
    """One row per contract and call; zero prices counted, not in the path; 7-field quantity is 0."""
    # Arrange
    feed = Feed({A: 100_000.0, C: 1_842.0})
    feed.add(A, "08:30:00", 0.0, quantity=0)  # no expected price yet
    feed.add(C, "08:30:01", 1_840.0, quantity=0)
    feed.add(A, "08:31:00", 101_000.0, quantity=10)
    feed.add(A, "08:40:00", 99_500.0, quantity=80)
    feed.add(C, "08:44:00", 1_851.0, quantity=0)
    feed.add(A, "08:45:00", 100_500.0, "112", quantity=120)
    feed.add(C, "08:45:00", 1_850.0, "112", quantity=0)
    feed.add(A, "15:35:00", 102_000.0, "121", quantity=5)
    feed.add(A, "15:45:00", 103_000.0, "129", quantity=90)
    monitor = AuctionMonitor(AuctionMonitorConfig(output_dir=str(tmp_path)))

    # Act
    run(feed.records, monitor)

    # Assert
    rows = monitor.summary()
    assert [(r["instrument_id"], r["call"]) for r in rows] == [
        ("A11612.KRX", "pre_open"),
        ("A11612.KRX", "closing"),
        ("A3G612.KRX", "pre_open"),
    ]
    assert rows[0] == {
        "instrument_id": "A11612.KRX",
        "date": "2026-11-24",
        "call": "pre_open",
        "first_update": "08:30:00",
        "last_update": "08:45:00",
        "updates": 4,
        "zero_price": 1,
        "prev_close": 100_000.0,
        "first_price": 101_000.0,
        "final_price": 100_500.0,
        "min_price": 99_500.0,
        "max_price": 101_000.0,
        "range": 1_500.0,
        "drift": -500.0,
        "drift_pct": -0.495,
        "gap_pct": 0.5,
        "final_quantity": 120,
        "last_phase": "112",
        "ended": True,
    }
    assert rows[1]["updates"] == 2 and rows[1]["drift"] == 1_000.0 and rows[1]["last_phase"] == "129"
    assert rows[2]["final_quantity"] == 0 and rows[2]["range"] == 11.0 and rows[2]["zero_price"] == 0
    path_points = next(a.path for a in monitor.auctions if a.instrument_id == A and a.call is Call.PRE_OPEN)
    assert [p[1] for p in path_points] == [101_000.0, 99_500.0, 100_500.0]
    with open(tmp_path / "auctions.csv", newline="") as file:
        written = list(csv.DictReader(file))
    assert len(written) == 3 and written[0]["final_price"] == "100500.0"
    assert "A3G612.KRX" in (tmp_path / "auctions.txt").read_text()


def test_auction_monitor_with_only_zero_prices_reports_no_price():
    """An auction that never published a price has a row with empty price columns."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "08:30:00", 0.0, quantity=0)
    feed.add(A, "08:31:00", 0.0, quantity=0)
    monitor = AuctionMonitor(AuctionMonitorConfig())

    run(feed.records, monitor)

    (row,) = monitor.summary()
    assert row["updates"] == 2 and row["zero_price"] == 2
    assert row["final_price"] is None and row["drift_pct"] is None and row["range"] is None
    assert row["ended"] is False


def test_auction_monitor_with_long_silence_and_unknown_code_splits_auctions():
    """Unknown phase codes are classified by time; a silence over max_gap_secs starts a new auction."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "11:00:00", 100_000.0, "000")
    feed.add(A, "11:05:00", 100_100.0, "000")
    feed.add(A, "13:00:00", 99_000.0, "000")
    monitor = AuctionMonitor(AuctionMonitorConfig(max_gap_secs=600.0))

    run(feed.records, monitor)

    rows = monitor.summary()
    assert [(r["call"], r["updates"], r["final_price"]) for r in rows] == [
        ("other", 2, 100_100.0),
        ("other", 1, 99_000.0),
    ]


def test_auction_monitor_with_instrument_ids_sees_only_those():
    """Subscribing per instrument delivers only that instrument's records."""
    feed = Feed({A: 100_000.0, B: 587_000.0})
    for second in range(5):
        feed.add(A, f"08:31:0{second}", 100_000.0 + second * 100)
        feed.add(B, f"08:31:0{second}", 587_000.0)
    monitor = AuctionMonitor(AuctionMonitorConfig(instrument_ids=["A50612.KRX"]))

    run(feed.records, monitor)

    assert [(r["instrument_id"], r["updates"]) for r in monitor.summary()] == [("A50612.KRX", 5)]


# -- PRE-OPEN SIGNAL -------------------------------------------------------------------------------


def test_preopen_signal_with_end_code_decides_long_with_exact_values(tmp_path):
    """A confirmed upward gap at the 112 update is LONG, stamped with that update's ts_event."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "08:30:00", 0.0, quantity=0)
    feed.add(A, "08:35:00", 100_200.0, quantity=50)
    feed.add(A, "08:44:59", 101_000.0, quantity=400)
    end = feed.add(A, "08:45:00", 101_500.0, "112", quantity=600)
    feed.add(A, "08:45:00", 101_600.0, "112", quantity=650)  # after the decision: ignored
    feed.add(A, "15:45:00", 103_000.0, "129", quantity=90)  # closing call: no decision
    signal = PreOpenSignal(PreOpenSignalConfig(output_dir=str(tmp_path)))

    run(feed.records, signal)

    assert signal.decisions == [
        Decision(
            instrument_id=A,
            ts_event=end.ts_event,
            side=Side.LONG,
            final_price=101_500.0,
            prev_close=100_000.0,
            gap_pct=1.5,
            drift_pct=1.2974,
            quantity=600,
            reason="end code 112; gap +1.50%, drift +1.30%: follow the gap",
        )
    ]
    with open(tmp_path / "decisions.csv", newline="") as file:
        (row,) = list(csv.DictReader(file))
    assert row["side"] == "LONG" and row["time_kst"] == "08:45:00" and row["instrument_id"] == "A11612.KRX"


@pytest.mark.parametrize(
    ("prices", "final_sign", "quantity", "side", "reason_end"),
    [
        ((100_000.0, 98_800.0), None, 500, Side.SHORT, "follow the gap"),
        ((97_000.0, 98_800.0), None, 500, Side.FLAT, "drift does not confirm the gap by 0.2%"),
        ((100_000.0, 100_300.0), None, 500, Side.FLAT, "|gap| < 0.5%"),
        ((100_000.0, 102_000.0), None, 50, Side.FLAT, "expected quantity 50 < 100"),
        ((100_000.0, 110_000.0), 1, 500, Side.FLAT, "at the limit-up price, no fill expected"),
        ((100_000.0, 102_000.0), None, 0, Side.LONG, "follow the gap, quantity unknown"),
    ],
)
def test_preopen_signal_rules(prices, final_sign, quantity, side, reason_end):
    """Short, unconfirmed drift, small gap, thin quantity, limit price, 7-field (quantity 0)."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "08:40:00", prices[0], quantity=quantity)
    feed.add(A, "08:45:00", prices[1], "112", quantity=quantity, sign=final_sign)
    signal = PreOpenSignal(PreOpenSignalConfig())

    run(feed.records, signal)

    (decision,) = signal.decisions
    assert decision.side is side
    assert decision.reason.endswith(reason_end), decision.reason


def test_preopen_signal_with_fade_takes_the_other_side():
    """fade=True sells a confirmed upward gap."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "08:40:00", 100_000.0)
    feed.add(A, "08:45:00", 102_000.0, "112")
    signal = PreOpenSignal(PreOpenSignalConfig(fade=True))

    run(feed.records, signal)

    assert [(d.side, d.reason.endswith("fade the gap")) for d in signal.decisions] == [(Side.SHORT, True)]


def test_preopen_signal_without_end_code_decides_at_decision_time():
    """No 112: the contract's first update at/after decision_time_kst ends its call (included)."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "08:40:00", 100_000.0)
    feed.add(A, "08:44:30", 101_000.0)
    at = feed.add(A, "08:45:00", 101_200.0, "311")
    feed.add(A, "08:45:05", 90_000.0, "311")  # late: ignored
    signal = PreOpenSignal(PreOpenSignalConfig())

    run(feed.records, signal)

    (decision,) = signal.decisions
    assert (decision.ts_event, decision.final_price, decision.side) == (at.ts_event, 101_200.0, Side.LONG)
    assert decision.reason.startswith("08:45:00 KST reached;")


def test_preopen_signal_with_silent_contract_decides_after_grace_on_other_data():
    """A contract silent at the end is decided once any record passes the cut-off + grace_secs."""
    feed = Feed({A: 100_000.0, B: 587_000.0})
    feed.add(A, "08:40:00", 100_000.0)
    feed.add(A, "08:44:50", 98_000.0)  # A says nothing more
    feed.add(B, "08:44:55", 587_000.0)
    feed.add(B, "08:45:00", 587_000.0, "112")  # decides B only
    feed.add(B, "08:45:29", 587_000.0, "000")  # not yet
    feed.add(B, "08:45:40", 587_000.0, "000")  # past 08:45:30: A is due
    feed.add(B, "08:46:00", 587_000.0, "000")  # a later message: A is decided now
    signal = PreOpenSignal(PreOpenSignalConfig(grace_secs=30.0))

    run(feed.records, signal)

    assert [d.instrument_id for d in signal.decisions] == [B, A]
    late = signal.decisions[1]
    assert late.ts_event == kst_ns("08:45:30")  # stamped at the deadline, not at the trigger
    assert late.side is Side.SHORT and late.reason.startswith("no end-of-call update;")


def test_preopen_signal_with_records_of_one_message_in_any_order_decides_the_same():
    """Records sharing a ts_init (one multi-record frame) give the same decisions in any order."""
    feed = Feed({A: 100_000.0, B: 587_000.0, C: 1_842.0})
    feed.add(A, "08:40:00", 100_000.0)
    feed.add(A, "08:44:00", 101_000.0)
    feed.add(B, "08:44:00", 580_000.0)
    feed.add(C, "08:44:00", 1_842.0)  # C stays silent
    frame_init = kst_ns("08:45:41")
    a_late = KISExpectedFill(A, 101_500.0, 1_500.0, 2, 1.5, "311", 500, kst_ns("08:45:10"), frame_init)
    b_late = KISExpectedFill(B, 579_000.0, -8_000.0, 5, -1.36, "000", 500, kst_ns("08:45:40"), frame_init)
    outcomes = []
    for frame in ([a_late, b_late], [b_late, a_late]):
        signal = PreOpenSignal(PreOpenSignalConfig(grace_secs=30.0))
        run([*feed.records, *frame], signal)
        outcomes.append(sorted(signal.decisions, key=lambda d: d.instrument_id.value))

    assert outcomes[0] == outcomes[1]
    facts = [(d.instrument_id, d.final_price, d.ts_event, d.reason.split(";")[0]) for d in outcomes[0]]
    assert facts == [
        (A, 101_500.0, a_late.ts_event, "08:45:00 KST reached"),  # its own late record included
        (C, 1_842.0, kst_ns("08:45:30"), "no end-of-call update"),
        (B, 579_000.0, b_late.ts_event, "08:45:00 KST reached"),
    ]


def test_preopen_signal_with_data_ending_mid_call_decides_on_stop():
    """A call still open when the data ends is decided on stop, at the last ts_event seen."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "08:38:00", 100_000.0)
    last = feed.add(A, "08:40:00", 99_000.0)
    signal = PreOpenSignal(PreOpenSignalConfig())

    run(feed.records, signal)

    (decision,) = signal.decisions
    assert decision.ts_event == last.ts_event and decision.side is Side.SHORT
    assert decision.reason.startswith("data ended;")


def test_preopen_signal_with_closing_call_first_decides_open_call_as_over():
    """A contract's first closing-call update ends its unannounced pre-open call."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "08:40:00", 100_000.0)
    close = feed.add(A, "15:35:00", 99_000.0, "121")
    signal = PreOpenSignal(PreOpenSignalConfig(grace_secs=1e9))

    run(feed.records, signal)

    (decision,) = signal.decisions
    assert decision.ts_event == close.ts_event and decision.final_price == 100_000.0
    assert decision.reason.startswith("call over;") and decision.side is Side.FLAT


def test_preopen_signal_with_zero_prices_only_is_flat():
    """No expected price during the call: FLAT, prices 0.0, never a -100 % gap."""
    feed = Feed({A: 100_000.0})
    feed.add(A, "08:30:00", 0.0, quantity=0)
    feed.add(A, "08:45:00", 0.0, "112", quantity=0)
    signal = PreOpenSignal(PreOpenSignalConfig())

    run(feed.records, signal)

    (decision,) = signal.decisions
    assert (decision.side, decision.final_price, decision.gap_pct) == (Side.FLAT, 0.0, 0.0)
    assert decision.reason == "end code 112; no expected price in 2 update(s)"


def test_preopen_signal_with_two_days_decides_once_per_day_and_instrument_filter():
    """One decision per contract per KST day; unsubscribed instruments are not decided."""
    feed = Feed({A: 100_000.0, B: 587_000.0})
    for date in ("2026-11-24", "2026-11-25"):
        feed.add(A, "08:40:00", 100_000.0, date=date)
        feed.add(B, "08:40:00", 587_000.0, date=date)
        feed.add(A, "08:45:00", 101_000.0, "112", date=date)
        feed.add(B, "08:45:00", 587_000.0, "112", date=date)
    signal = PreOpenSignal(PreOpenSignalConfig(instrument_ids=["A11612.KRX"]))

    run(feed.records, signal)

    assert [(d.instrument_id, d.side) for d in signal.decisions] == [(A, Side.LONG), (A, Side.LONG)]
    assert signal.decisions[1].ts_event - signal.decisions[0].ts_event == 86_400 * 1_000_000_000


def test_evaluate_without_previous_close_is_flat():
    """A record whose price - change is not positive gives no gap to trade."""
    state = CallState(A, 0, updates=1, first_price=100.0, final_price=100.0, prev_close=0.0, quantity=5)
    assert evaluate(state, PreOpenSignalConfig())[0] is Side.FLAT
