"""
A seeded, scalable H0ZFANC0 corpus shared by the benchmarks.

Auction-shaped data: 40 stock-futures contracts quoted through the pre-open (08:30-08:45 KST) and
closing (15:35-15:45 KST) calls of consecutive days, expected prices on the KRX tick ladder around a
previous close, signed change/percent/sign consistent with the price, phase codes per call, and
expected quantity growing through each call. A chosen fraction of the *records* (default 20 %)
travels in multi-record frames of 2 to 5 records, the rest one record per frame, as KIS sends at
peaks. Messages are 1 ms apart, so a million records cover about one call.

`iter_mixed_messages` is a three-TR corpus of whole KRX session days (see its docstring): expected
fills in the calls, the auction prints, trades and 10-level books in continuous trading only.

Everything is a generator: `iter_messages` streams ``(ts_recv_ns, frame)`` without holding the
corpus, so `write_capture` can build a 5-million-record capture in constant memory.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Final

from kis_adapter.capture import CaptureWriter
from kis_adapter.krx import default_calendar
from kis_adapter.krx import kst_ns
from kis_adapter.krx import tick_size as krx_tick_size
from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import H0ZFASP0
from kis_adapter.protocol import H0ZFCNT0
from kis_adapter.protocol import build_data_frame

NS: Final = 1_000_000_000
MS: Final = 1_000_000
DAY_NS: Final = 86_400 * NS
KST_OFFSET_NS: Final = 9 * 3_600 * NS
FIRST_DAY_MIDNIGHT_KST: Final = 1_763_996_400 * NS  # 2025-11-25 00:00:00 KST (Tuesday)
CALLS: Final = (
    (8 * 3600 + 30 * 60, 8 * 3600 + 45 * 60, "311"),
    (15 * 3600 + 35 * 60, 15 * 3600 + 45 * 60, "121"),
)
COLUMNS: Final = (
    "futs_shrn_iscd",
    "bsop_hour",
    "antc_cnpr",
    "antc_cntg_vrss",
    "antc_cntg_vrss_sign",
    "antc_cntg_prdy_ctrt",
    "antc_mkop_cls_code",
    "antc_cnqn",
)


def tick_size(price: float) -> int:
    for bound, tick in ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500)):
        if price < bound:
            return tick
    return 1_000


@dataclass(slots=True)
class _Contract:
    code: str
    prev_close: int
    price: int
    quantity: int = 0


def _contracts(rng: random.Random, n: int = 40) -> list[_Contract]:
    out = []
    for i in range(n):
        prev_close = rng.choice([1_842, 3_905, 11_230, 41_350, 98_600, 218_500, 587_000, 912_000])
        prev_close -= prev_close % tick_size(prev_close)
        out.append(_Contract(code=f"A{10 + i:02d}612", prev_close=prev_close, price=prev_close))
    return out


def _record(contract: _Contract, rng: random.Random, hhmmss: str, phase: str) -> tuple[str, ...]:
    tick = tick_size(contract.price)
    contract.price = max(tick, contract.price + rng.choice((-2, -1, -1, 0, 0, 1, 1, 2)) * tick)
    contract.quantity += rng.randrange(0, 40)
    change = contract.price - contract.prev_close
    sign = "2" if change > 0 else ("5" if change < 0 else "3")
    pct = f"{change * 100 / contract.prev_close:.2f}"
    return (contract.code, hhmmss, str(contract.price), str(change), sign, pct, phase, str(contract.quantity))


def iter_messages(
    n_records: int, multi_fraction: float = 0.2, seed: int = 20251125
) -> Iterator[tuple[int, str]]:
    """Yield ``(ts_recv_ns, frame)`` carrying exactly `n_records` records, `multi_fraction` of them in
    multi-record frames."""
    rng = random.Random(seed)
    contracts = _contracts(rng)
    day, call = 0, 0
    start, end, phase = CALLS[call]
    ts = FIRST_DAY_MIDNIGHT_KST + start * NS
    emitted = in_multi = 0
    while emitted < n_records:
        seconds = (ts - FIRST_DAY_MIDNIGHT_KST) // NS - day * 86_400
        if seconds >= end:  # next call, or the next day's pre-open call
            call = (call + 1) % len(CALLS)
            day += call == 0
            start, end, phase = CALLS[call]
            ts = FIRST_DAY_MIDNIGHT_KST + day * DAY_NS + start * NS
            if call == 0:
                for contract in contracts:
                    contract.prev_close, contract.quantity = contract.price, 0
            continue
        hhmmss = f"{seconds // 3600:02d}{seconds % 3600 // 60:02d}{seconds % 60:02d}"
        left = n_records - emitted
        if left >= 2 and in_multi < multi_fraction * (emitted + 1):
            k = min(rng.randint(2, 5), left)
            records = [_record(c, rng, hhmmss, phase) for c in rng.sample(contracts, k)]
            in_multi += k
        else:
            records = [_record(rng.choice(contracts), rng, hhmmss, phase)]
        emitted += len(records)
        yield ts + rng.randrange(0, MS // 2), build_data_frame(H0ZFANC0, records)
        ts += MS


def write_capture(
    directory: Path, n_records: int, multi_fraction: float = 0.2, compress: bool = True
) -> list[Path]:
    """Stream the corpus into capture files under `directory` (one per KST day); return their paths."""
    with CaptureWriter(
        directory, compress=compress, header={"tr_ids": [H0ZFANC0], "source": "benchmark"}
    ) as writer:
        for ts, frame in iter_messages(n_records, multi_fraction):
            writer.write_message(ts, frame)
    return writer.paths


# -- THREE TRS: WHOLE SESSION DAYS ---------------------------------------------------------------

MIXED_TRS: Final = (H0ZFANC0, H0ZFCNT0, H0ZFASP0)
FIRST_DAY: Final = dt.date(2025, 11, 25)  # a KRX session day (Tuesday)
# Shares of a day's records: expected fills (calls only), trades (the two prints included), books.
SHARES: Final = {H0ZFANC0: 0.15, H0ZFCNT0: 0.30, H0ZFASP0: 0.55}
PRE_OPEN_SHARE: Final = 0.6  # of the expected fills: the pre-open call is 15 min, the closing one 10
_SIZE_POOL: Final = 32  # book size/count variants per contract (the prices follow the market)


def _up(price: int) -> int:
    return price + krx_tick_size(price)


def _down(price: int) -> int:
    return price - krx_tick_size(price - 1)


@dataclass(slots=True)
class _Market:
    """One contract's day: expected price, best bid/ask and cumulative volumes, all consistent."""

    code: str
    prev_close: int
    expected: int = 0
    quantity: int = 0
    bid: int = 0
    ask: int = 0
    open: int = 0
    high: int = 0
    low: int = 0
    volume: int = 0  # ACML_VOL
    value: int = 0  # ACML_TR_PBMN
    sell_total: int = 0  # SELN_CNTG_SMTN
    buy_total: int = 0  # SHNU_CNTG_SMTN
    sell_count: int = 0
    buy_count: int = 0
    sizes: list[str] = field(default_factory=list)  # pre-joined book size/count/total blocks
    prices: dict[tuple[int, int], str] = field(default_factory=dict)  # pre-joined book price blocks

    def new_day(self) -> None:
        self.expected, self.quantity = self.prev_close, 0
        self.open = self.high = self.low = self.volume = self.value = 0
        self.sell_total = self.buy_total = self.sell_count = self.buy_count = 0
        self.prices.clear()

    def step_expected(self, rng: random.Random) -> None:
        """A tick or two, pulled back towards the previous close (stays far inside the ±10 % limit)."""
        pull = (self.expected - self.prev_close) / (0.02 * self.prev_close)
        for _ in range(rng.choice((0, 1, 1, 2))):
            if rng.random() < 0.5 - 0.2 * max(-1.0, min(1.0, pull)):
                self.expected = _up(self.expected)
            else:
                self.expected = _down(self.expected)
        self.quantity += rng.randrange(0, 40)

    def trade(self, price: int, size: int, side: str) -> None:
        """Book one trade; `side` "buy"/"sell" (the aggressor) or "auction" (no total moves)."""
        if not self.open:
            self.open = self.high = self.low = price
        self.high, self.low = max(self.high, price), min(self.low, price)
        self.volume += size
        self.value += price * size * 10
        if side == "buy":
            self.buy_total += size
            self.buy_count += 1
        elif side == "sell":
            self.sell_total += size
            self.sell_count += 1


def _size_blocks(rng: random.Random) -> list[str]:
    out = []
    for _ in range(_SIZE_POOL):
        ask_sizes = [max(1, int(rng.lognormvariate(2.5, 1.1))) for _ in range(10)]
        bid_sizes = [max(1, int(rng.lognormvariate(2.5, 1.1))) for _ in range(10)]
        ask_counts = [max(1, min(s, int(rng.lognormvariate(1.0, 0.8)))) for s in ask_sizes]
        bid_counts = [max(1, min(s, int(rng.lognormvariate(1.0, 0.8)))) for s in bid_sizes]
        totals = [sum(ask_counts) + 7, sum(bid_counts) + 9, sum(ask_sizes) + 150, sum(bid_sizes) + 170, 3, -4]
        out.append("^".join(map(str, ask_counts + bid_counts + ask_sizes + bid_sizes + totals)))
    return out


def _expected_record(m: _Market, hhmmss: str, phase: str) -> str:
    change = m.expected - m.prev_close
    sign = "2" if change > 0 else ("5" if change < 0 else "3")
    pct = f"{change * 100 / m.prev_close:.2f}"
    return f"{m.code}^{hhmmss}^{m.expected}^{change}^{sign}^{pct}^{phase}^{m.quantity}"


def _trade_record(m: _Market, hhmmss: str, price: int, size: int, opened_at: str) -> str:
    """One 49-field H0ZFCNT0 record, consistent with the market after the trade."""
    change = price - m.prev_close
    sign = "2" if change > 0 else ("5" if change < 0 else "3")
    strength = f"{m.buy_total / m.sell_total * 100:.2f}" if m.sell_total else "0.00"
    fields = (
        m.code, hhmmss, price, sign, change, f"{change * 100 / m.prev_close:.2f}",
        m.open, m.high, m.low, size, m.volume, m.value,
        f"{price + 0.5:.2f}", "0.40", "0.00", "0.00", "0.00", "0.00", 31_250, 0,
        opened_at, "2", price - m.open, "000000", "3", price - m.high, "000000", "2", price - m.low,
        "0.50", strength, "0.50", 0, "0.50",
        m.ask, m.bid, 0, 0, m.sell_count, m.buy_count, m.buy_count - m.sell_count,
        m.sell_total, m.buy_total, 0, 0, "0.00", 0, 0, 0,
    )  # fmt: skip
    return "^".join(map(str, fields))


def _book_record(rng: random.Random, m: _Market, hhmmss: str) -> str:
    """One 68-field H0ZFASP0 snapshot: 10 levels a side on the tick ladder, never crossed."""
    key = (m.bid, m.ask)
    prices = m.prices.get(key)
    if prices is None:
        asks, bids = [m.ask], [m.bid]
        while len(asks) < 10:
            asks.append(_up(asks[-1]))
            bids.append(_down(bids[-1]))
        prices = "^".join(map(str, asks + bids))
        if len(m.prices) > 256:
            m.prices.clear()
        m.prices[key] = prices
    return f"{m.code}^{hhmmss}^{prices}^{m.sizes[rng.randrange(_SIZE_POOL)]}"


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}{seconds % 3600 // 60:02d}{seconds % 60:02d}"


class _Stamper:
    """Receive times: a record slot's instant plus 0.2-3 ms of latency, strictly increasing."""

    __slots__ = ("last", "rng")

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.last = rng, 0

    def __call__(self, instant: int) -> int:
        ts = max(instant + self.rng.randrange(200_000, 3_000_000), self.last + 1_000)
        self.last = ts
        return ts


def _frames(
    rng: random.Random, tr_id: str, n: int, multi_fraction: float, make: Callable[[int, int], list[str]]
) -> Iterator[tuple[int, str]]:
    """``(slot, frame)`` for `n` records of one TR: `multi_fraction` of them in frames of 2-5."""
    slot = in_multi = 0
    while slot < n:
        left = n - slot
        k = min(rng.randint(2, 5), left) if left >= 2 and in_multi < multi_fraction * (slot + 1) else 1
        records = make(k, slot)
        in_multi += k if k > 1 else 0
        yield slot, f"0|{tr_id}|{len(records):03d}|" + "^".join(records)
        slot += k


def _mixed_day(
    rng: random.Random, markets: list[_Market], date: dt.date, budget: int, multi_fraction: float
) -> Iterator[tuple[int, str]]:
    """One session day of the three TRs carrying exactly `budget` records."""
    times = default_calendar().session_times(date)
    stamp = _Stamper(rng)
    for m in markets:
        m.new_day()
    n_prints = 2 * len(markets) if budget >= 20 * len(markets) else 0
    n_expected = round(budget * SHARES[H0ZFANC0])
    n_trades = max(0, round(budget * SHARES[H0ZFCNT0]) - n_prints)
    n_books = budget - n_expected - n_trades - n_prints
    n_pre = round(n_expected * PRE_OPEN_SHARE)
    opened_at = _clock(times.open)

    def call(start: int, end: int, n: int, phase: str) -> Iterator[tuple[int, str]]:
        span = (end - start) * NS

        def make(k: int, slot: int) -> list[str]:
            hhmmss = _clock(start + (slot * span // n) // NS)
            out = []
            for m in rng.sample(markets, k):
                m.step_expected(rng)
                out.append(_expected_record(m, hhmmss, phase))
            return out

        for slot, frame in _frames(rng, H0ZFANC0, n, multi_fraction, make):
            yield stamp(kst_ns(date, start) + slot * span // n), frame

    def prints(second: int) -> Iterator[tuple[int, str]]:
        hhmmss = _clock(second)
        for m in markets:
            size = max(1, m.quantity)
            m.trade(m.expected, size, "auction")
            record = _trade_record(m, hhmmss, m.expected, size, opened_at)
            yield stamp(kst_ns(date, second)), f"0|{H0ZFCNT0}|001|{record}"

    def trade(m: _Market, hhmmss: str) -> str:
        pull = (m.bid - m.prev_close) / (0.03 * m.prev_close)
        buy = rng.random() < 0.5 - 0.15 * max(-1.0, min(1.0, pull))
        price = m.ask if buy else m.bid
        size = max(1, int(rng.lognormvariate(1.2, 0.9)))
        m.trade(price, size, "buy" if buy else "sell")
        record = _trade_record(m, hhmmss, price, size, opened_at)
        if rng.random() < 0.3:  # the traded level is exhausted: the quote moves a tick
            if buy:
                m.bid, m.ask = m.ask, _up(m.ask)
            else:
                m.bid, m.ask = _down(m.bid), m.bid
        return record

    def continuous() -> Iterator[tuple[int, str]]:
        start, end = times.open, times.closing_call
        n = n_trades + n_books
        if n == 0:
            return
        span = (end - start) * NS
        slot = in_multi = 0
        trades_left, books_left = n_trades, n_books
        while slot < n:
            instant = kst_ns(date, start) + slot * span // n
            hhmmss = _clock(start + (slot * span // n) // NS)
            if rng.random() * (trades_left + books_left) < trades_left:
                k = 1
                if trades_left >= 2 and in_multi < multi_fraction * (n_trades - trades_left + 1):
                    k = min(rng.randint(2, 5), trades_left)
                    in_multi += k
                records = [trade(m, hhmmss) for m in rng.sample(markets, k)]
                trades_left -= k
                yield stamp(instant), f"0|{H0ZFCNT0}|{k:03d}|" + "^".join(records)
            else:
                k = 1
                books_left -= 1
                yield stamp(instant), f"0|{H0ZFASP0}|001|" + _book_record(rng, rng.choice(markets), hhmmss)
            slot += k

    yield from call(times.pre_open_call, times.open, n_pre, "311")
    if n_prints:
        yield from prints(times.open)
    for m in markets:  # the continuous market opens around the print
        m.bid, m.ask = _down(m.expected), _up(m.expected) if rng.random() < 0.5 else m.expected
        if m.ask == m.expected:
            m.bid = _down(m.expected)
        m.bid = min(m.bid, _down(m.ask))
    yield from continuous()
    for m in markets:  # the closing call starts from the last traded level
        m.expected, m.quantity = m.bid, 0
    yield from call(times.closing_call, times.close, n_expected - n_pre, "121")
    if n_prints:
        yield from prints(times.close)
    for m in markets:
        m.prev_close = m.expected


def iter_mixed_messages(
    n_records: int,
    multi_fraction: float = 0.2,
    records_per_day: int = 200_000,
    seed: int = 20251125,
) -> Iterator[tuple[int, str]]:
    """
    Yield ``(ts_recv_ns, frame)`` of the three TRs carrying exactly `n_records` records, over as many
    consecutive KRX session days as `records_per_day` needs (times from the KRX calendar).

    Each day, 40 contracts: H0ZFANC0 expected fills only inside the two single-price calls (60 % in
    the pre-open call), expected prices on the tick ladder near the previous close and quantities
    growing; at the end of each call the auction print, one H0ZFCNT0 trade per contract at the last
    expected price for the last expected quantity with no aggressor (cumulative buy/sell totals do not
    move); in continuous trading, trades at the best bid or ask (seller- or buyer-initiated,
    ``ACML_VOL`` rising by ``LAST_CNQN`` and exactly one of the totals with it) and H0ZFASP0 books of
    10 levels a side on the ladder around the current quote (never crossed, never inside a call).
    `multi_fraction` of the expected fills and trades travel in frames of 2-5 records; books one a
    frame. A day's records split 15 % expected fills, 30 % trades, 55 % books.
    """
    rng = random.Random(seed)
    markets = []
    for m in _contracts(rng):
        market = _Market(code=m.code, prev_close=m.prev_close)
        market.sizes = _size_blocks(rng)
        markets.append(market)
    calendar = default_calendar()
    date = calendar.next_session(FIRST_DAY, include=True)
    emitted = 0
    while emitted < n_records:
        budget = min(records_per_day, n_records - emitted)
        yield from _mixed_day(rng, markets, date, budget, multi_fraction)
        emitted += budget
        date = calendar.next_session(date)


def write_mixed_capture(
    directory: Path, n_records: int, multi_fraction: float = 0.2, records_per_day: int = 200_000
) -> list[Path]:
    """Stream the three-TR corpus into gzip capture files under `directory` (one per KST day)."""
    with CaptureWriter(
        directory, compress=True, header={"tr_ids": list(MIXED_TRS), "source": "benchmark"}
    ) as writer:
        for ts, frame in iter_mixed_messages(n_records, multi_fraction, records_per_day):
            writer.write_message(ts, frame)
    return writer.paths
