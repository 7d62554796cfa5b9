"""
Generate the bundled sample capture: one synthetic KRX stock-futures day of H0ZFANC0 (expected
auction fills), H0ZFCNT0 (trades) and H0ZFASP0 (10-level book) data, and the day's master file.

Real KIS captures cannot be redistributed, so the demo ships this seeded stand-in instead. It has
the shapes a real recording has, for ten December-2026 stock-futures contracts in the new code
scheme:

* the pre-open call (08:30-08:45 KST) and the closing call (15:35-15:45): expected prices on the
  KRX tick ladder discovering the auction price, expected quantity building up, phase codes
  (311 → 112, 121 → 129), multi-record frames at the peaks, one contract in the legacy 7-field
  layout, zero-price records (no expected price yet) at the start of a call, and a few books inside
  each call (KRX's "expected" book, sometimes crossed: they must never reach a matching engine);
* the auction prints: the first trade at 08:45:00 is the pre-open call's last expected price with
  its last expected quantity, the first at 15:45:00 likewise for the closing call, and neither side
  is the aggressor (the cumulative buy and sell volumes do not move);
* continuous trading 08:45-09:15 and 15:05-15:35: trades at the best bid or ask (buyer- or
  seller-initiated, cumulative volumes consistent), multi-record trade frames, and 10-level books on
  the tick ladder every few seconds;
* subscribe acks for every (TR, code), PINGPONG every 10-14 s, session events.

The same seed gives the same bytes (gzip with a zeroed mtime), so regenerating is a no-op in git::

    .venv/bin/python scripts/make_sample.py                 # data/sample/kis-20261124-sample.jsonl.gz
    .venv/bin/python scripts/make_sample.py --seed 7 --out /tmp/other.jsonl.gz
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import math
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kis_adapter.capture import CaptureWriter
from kis_adapter.krx import tick_size
from kis_adapter.master import MasterRow
from kis_adapter.master import build_master
from kis_adapter.master import standard_code
from kis_adapter.master_files import master_snapshot_path
from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import H0ZFASP0
from kis_adapter.protocol import H0ZFCNT0
from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol import build_pingpong

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATE = "2026-11-24"
DEFAULT_SEED = 20261124
DEFAULT_OUT = REPO / "data" / "sample" / "kis-20261124-sample.jsonl.gz"
WS_URL = "ws://ops.koreainvestment.com:21000/tryitout"
KST = dt.timezone(dt.timedelta(hours=9), "KST")
NS = 1_000_000_000
MS = 1_000_000

PRE_OPEN = ("08:30:00", "08:45:00", "311", "112")
CLOSING = ("15:35:00", "15:45:00", "121", "129")
MORNING = ("08:45:00", "09:15:00")  # continuous trading recorded after the opening print
AFTERNOON = ("15:05:00", "15:35:00")  # and before the closing call
PRICE_LIMIT = 0.10  # stage-1 daily limit of stock futures, as a fraction of the previous close
TRS = (H0ZFANC0, H0ZFCNT0, H0ZFASP0)


@dataclass(frozen=True)
class Contract:
    """One stock-futures contract of the sample; codes follow the 2026 scheme ``A`` + underlying + YMM."""

    code: str
    name: str
    prev_close: int
    depth: int  # expected quantity reached at the end of the pre-open call, contracts
    underlying: str  # the 6-digit ticker of the underlying share
    underlying_name: str
    legacy: bool = False  # published in the 7-field layout (no ANTC_CNQN)
    gap_pct: float | None = None  # fixed opening gap; None draws one from the seed
    trade_rate: float = 0.25  # trades per second in continuous trading


# Underlying ids in the codes other than 11 (Samsung Electronics) and 50 (SK hynix) are illustrative.
CONTRACTS: tuple[Contract, ...] = (
    Contract("A11612", "Samsung Electronics Dec-26", 98_600, 4_200, "005930", "삼성전자", trade_rate=0.8),
    Contract("A50612", "SK hynix Dec-26", 587_000, 1_900, "000660", "SK하이닉스", trade_rate=0.6),
    Contract("A13612", "Hyundai Motor Dec-26", 246_500, 900, "005380", "현대차"),
    Contract("A16612", "NAVER Dec-26", 218_500, 650, "035420", "NAVER"),
    Contract("A17612", "Kakao Dec-26", 41_350, 2_400, "035720", "카카오", trade_rate=0.4),
    Contract("A21612", "LG Display Dec-26", 11_230, 3_100, "034220", "LG디스플레이", gap_pct=12.0),
    Contract("A25612", "KEPCO Dec-26", 27_850, 1_700, "015760", "한국전력"),
    Contract("A31612", "Samsung Heavy Ind. Dec-26", 14_870, 2_800, "010140", "삼성중공업"),
    Contract("A3C612", "Pan Ocean Dec-26", 3_905, 1_500, "028670", "팬오션", trade_rate=0.15),
    Contract("A3G612", "Korea Line Dec-26", 1_842, 1_200, "005880", "대한해운", legacy=True, trade_rate=0.15),
)


def tick_up(price: int) -> int:
    """The next valid price above `price` (every ladder bound is a multiple of both ticks)."""
    return price + tick_size(price)


def tick_down(price: int) -> int:
    """The next valid price below `price`."""
    return price - tick_size(price - 1)


def to_tick(price: float) -> int:
    tick = tick_size(price)
    return max(tick, round(price / tick) * tick)


def sign_of(change: float, price: int, c: Contract) -> int:
    """KIS's change sign: 1 limit up, 2 up, 3 flat, 4 limit down, 5 down."""
    limit_up, limit_down = price_limits(c.prev_close)
    if price >= limit_up:
        return 1
    if price <= limit_down:
        return 4
    return 2 if change > 0 else 5 if change < 0 else 3


def price_limits(prev_close: int) -> tuple[int, int]:
    """Stage-1 limit prices, rounded inwards to the tick."""
    up, down = prev_close * (1 + PRICE_LIMIT), prev_close * (1 - PRICE_LIMIT)
    return (
        math.floor(up / tick_size(up)) * tick_size(up),
        math.ceil(down / tick_size(down)) * tick_size(down),
    )


def record_fields(c: Contract, hhmmss: str, price: int, phase: str, quantity: int) -> list[str]:
    """One H0ZFANC0 record; ``price == 0`` is KIS's "no expected price" (change -prev, -100.00 %)."""
    change = price - c.prev_close
    sign = 5 if price == 0 else sign_of(change, price, c)
    rate = f"{change / c.prev_close * 100:.2f}"
    fields = [c.code, hhmmss, str(price), str(change), str(sign), rate, phase]
    return fields if c.legacy else [*fields, str(quantity)]


@dataclass(frozen=True)
class Update:
    second: int  # seconds since KST midnight
    seq: int  # order within the second (stable sort key)
    contract: Contract
    fields: list[str]
    tr_id: str = H0ZFANC0


def kst_seconds(hhmmss: str) -> int:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return h * 3600 + m * 60 + s


def hhmmss(seconds: int) -> str:
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def simulate_call(
    rng: random.Random,
    c: Contract,
    window: tuple[str, str, str, str],
    anchor: float,
    target: float,
    depth: int,
    starts_without_price: bool,
) -> list[Update]:
    """
    The expected-price path of one contract through one call.

    Updates arrive as a Poisson process whose rate climbs towards the end of the call (orders pile
    in before the cut-off). The log price mean-reverts from a noisy start towards `target` with
    shrinking noise, so the call "discovers" its price; quantity builds up roughly as t^1.4.
    """
    start, end, phase, end_phase = window
    t0, t1 = kst_seconds(start), kst_seconds(end)
    length = t1 - t0
    limit_up, limit_down = price_limits(c.prev_close)
    updates: list[Update] = []
    seq = 0

    def emit(second: int, price: int, quantity: int, code: str) -> None:
        nonlocal seq
        updates.append(Update(second, seq, c, record_fields(c, hhmmss(second), price, code, quantity)))
        seq += 1

    first_price_at = t0 + rng.randint(20, 90) if starts_without_price else t0
    if starts_without_price:
        emit(t0, 0, 0, phase)  # the call has opened, no expected price yet
    spread = abs(math.log(target / anchor)) * 0.8 + 0.004
    x = math.log(anchor) + rng.gauss(0.0, spread)
    goal = math.log(target)
    t = float(first_price_at)
    quantity = 0.0
    while True:
        frac = (t - t0) / length
        if frac >= 1.0:
            break
        x += (goal - x) * (0.01 + 0.06 * frac)  # the price firms up as the cut-off nears
        x += rng.gauss(0.0, spread * 0.1 * (1.1 - frac))
        price = min(limit_up, max(limit_down, to_tick(math.exp(x))))
        grown = depth * frac**1.4 * (1 + rng.gauss(0.0, 0.04))
        quantity = max(quantity * 0.985, grown, 1.0)
        emit(int(t), price, int(quantity), phase)
        rate = 0.12 + 2.2 * frac**3  # updates per second for this contract
        t += rng.expovariate(rate)
    # The final expected price at the cut-off, published with the end-of-call code.
    x += (goal - x) * 0.7
    final = min(limit_up, max(limit_down, to_tick(math.exp(x))))
    emit(t1, final, int(max(quantity, depth * (1 + rng.gauss(0.0, 0.03)))), end_phase)
    return updates


@dataclass
class Market:
    """The continuous market of one contract: best bid/ask, the day's open/high/low and cumulative volumes."""

    c: Contract
    bid: int
    ask: int
    open: int = 0
    high: int = 0
    low: int = 0
    volume: int = 0  # ACML_VOL
    value: int = 0  # ACML_TR_PBMN, KRW (price × contracts × multiplier 10)
    sell_total: int = 0  # SELN_CNTG_SMTN: seller-initiated volume
    buy_total: int = 0  # SHNU_CNTG_SMTN: buyer-initiated volume
    sell_count: int = 0
    buy_count: int = 0
    open_interest: int = 0

    def trade(self, price: int, size: int, side: str) -> None:
        """Book one trade; `side` is "buy", "sell" (the aggressor) or "auction" (neither)."""
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


def trade_fields(m: Market, hhmmss: str, price: int, size: int, opened_at: str) -> list[str]:
    """One 49-field H0ZFCNT0 record, consistent with the market state after the trade."""
    c = m.c
    change = price - c.prev_close
    sign = sign_of(change, price, c)
    theoretical = price + 0.5
    strength = m.buy_total / m.sell_total * 100 if m.sell_total else 0.0
    buy_ratio = m.buy_total / m.volume if m.volume else 0.0
    return [
        c.code, hhmmss, str(price), str(sign), str(change), f"{change / c.prev_close * 100:.2f}",
        str(m.open), str(m.high), str(m.low), str(size), str(m.volume), str(m.value),
        f"{theoretical:.2f}", f"{price * 0.004:.2f}", "0.00", "0.00", "0.00", "0.00",
        str(m.open_interest), "0", opened_at, str(sign_of(price - m.open, price, c)), str(price - m.open),
        "000000", "3", str(price - m.high), "000000", "2", str(price - m.low),
        f"{buy_ratio:.2f}", f"{strength:.2f}", "0.50", "0", f"{theoretical - price:.2f}",
        str(m.ask), str(m.bid), "0", "0",
        str(m.sell_count), str(m.buy_count), str(m.buy_count - m.sell_count),
        str(m.sell_total), str(m.buy_total), "0", "0", "0.00", "0", "0", "0",
    ]  # fmt: skip


def book_fields(
    rng: random.Random, m: Market, hhmmss: str, levels: int = 10, crossed: bool = False
) -> list[str]:
    """
    One 68-field H0ZFASP0 snapshot: `levels` price levels a side with resting interest (levels are
    prices with orders, so some ticks are skipped), empty levels as 0; totals cover the whole book.
    """
    asks, bids = [m.ask], [m.bid]
    if crossed:  # KRX's expected book in a call: the best bid can sit above the best ask
        asks, bids = [m.bid], [m.ask]
    while len(asks) < levels:
        price = tick_up(asks[-1])
        asks.append(tick_up(price) if rng.random() < 0.25 else price)
    while len(bids) < levels:
        price = tick_down(bids[-1])
        bids.append(tick_down(price) if rng.random() < 0.25 else price)
    pad = [0] * (10 - levels)
    ask_sizes = [max(1, int(rng.lognormvariate(2.5, 1.1))) for _ in range(levels)] + pad
    bid_sizes = [max(1, int(rng.lognormvariate(2.5, 1.1))) for _ in range(levels)] + pad
    ask_counts = [max(1, min(s, int(rng.lognormvariate(1.0, 0.8)))) if s else 0 for s in ask_sizes]
    bid_counts = [max(1, min(s, int(rng.lognormvariate(1.0, 0.8)))) if s else 0 for s in bid_sizes]
    beyond = rng.randint(0, 400)
    totals = [
        sum(ask_counts) + beyond // 20, sum(bid_counts) + beyond // 20,
        sum(ask_sizes) + beyond, sum(bid_sizes) + beyond, rng.randint(-50, 50), rng.randint(-50, 50),
    ]  # fmt: skip
    values = asks + pad + bids + pad
    return [m.c.code, hhmmss, *map(str, values + ask_counts + bid_counts + ask_sizes + bid_sizes + totals)]


def simulate_continuous(
    rng: random.Random, m: Market, window: tuple[str, str], drift: float, opened_at: str
) -> list[Update]:
    """
    Continuous trading of one contract through `window`: trades (Poisson, `trade_rate` a second) at
    the best ask (buyer-initiated) or best bid (seller-initiated), an exhausted best level moving
    the quote a tick; a 10-level book snapshot every 1.5-4.5 s (KIS sends up to 5 a second).
    """
    t0, t1 = kst_seconds(window[0]), kst_seconds(window[1])
    updates: list[Update] = []
    seq = 0
    t = float(t0)
    next_book = float(t0)
    while True:
        t += rng.expovariate(m.c.trade_rate)
        while next_book < min(t, t1):
            updates.append(
                Update(int(next_book), seq, m.c, book_fields(rng, m, hhmmss(int(next_book))), H0ZFASP0)
            )
            seq += 1
            next_book += rng.uniform(1.5, 4.5)
        if t >= t1:
            break
        buy = rng.random() < 0.5 + drift
        price = m.ask if buy else m.bid
        size = max(1, int(rng.lognormvariate(1.2, 0.9)))
        m.trade(price, size, "buy" if buy else "sell")
        updates.append(
            Update(int(t), seq, m.c, trade_fields(m, hhmmss(int(t)), price, size, opened_at), H0ZFCNT0)
        )
        seq += 1
        if rng.random() < 0.3:  # the traded level is exhausted: the quote moves a tick
            if buy:
                m.bid, m.ask = m.ask, tick_up(m.ask)
            else:
                m.bid, m.ask = tick_down(m.bid), m.bid
        elif rng.random() < 0.2 and tick_up(m.bid) < m.ask:  # a spread of two ticks closes
            m.bid = tick_up(m.bid)
        elif rng.random() < 0.1:
            m.ask = tick_up(m.ask)
    return updates


def call_books(rng: random.Random, m: Market, window: tuple[str, str, str, str], near: int) -> list[Update]:
    """A few books inside a single-price call: 3 expected levels a side around `near`, some crossed."""
    t0, t1 = kst_seconds(window[0]), kst_seconds(window[1])
    tick = tick_size(near)
    shown = Market(m.c, bid=near - tick, ask=near)
    return [
        Update(
            second,
            0,
            m.c,
            book_fields(rng, shown, hhmmss(second), levels=3, crossed=rng.random() < 0.5),
            H0ZFASP0,
        )
        for second in sorted(rng.sample(range(t0 + 30, t1 - 5), 6))
    ]


def auction_print(m: Market, second: int, updates: list[Update], opened_at: str) -> Update:
    """The auction's print: the call's last expected price with its last expected quantity, no aggressor."""
    final = next(u for u in reversed(updates) if u.tr_id == H0ZFANC0)
    price = int(final.fields[2])
    quantity = int(final.fields[7]) if len(final.fields) > 7 else m.c.depth
    m.trade(price, quantity, "auction")
    return Update(second, 10**6, m.c, trade_fields(m, hhmmss(second), price, quantity, opened_at), H0ZFCNT0)


def generate_updates(rng: random.Random) -> list[Update]:
    updates: list[Update] = []
    zero_start_pre = set(rng.sample([c.code for c in CONTRACTS], 3)) | {CONTRACTS[0].code}
    zero_start_close = {rng.choice(CONTRACTS).code}
    open_s, close_s = kst_seconds(PRE_OPEN[1]), kst_seconds(CLOSING[1])
    for c in CONTRACTS:
        gap = c.gap_pct if c.gap_pct is not None else rng.gauss(0.0, 1.3)
        open_price = c.prev_close * (1 + gap / 100)
        pre = simulate_call(rng, c, PRE_OPEN, c.prev_close, open_price, c.depth, c.code in zero_start_pre)
        m = Market(c, bid=0, ask=0, open_interest=rng.randint(5_000, 60_000))
        opening = auction_print(m, open_s, pre, hhmmss(open_s))
        printed = int(opening.fields[2])
        m.bid, m.ask = tick_down(printed), printed if rng.random() < 0.5 else tick_up(printed)
        m.bid = min(m.bid, m.ask - tick_size(m.ask - 1))
        day_move = gap / 100 + rng.gauss(0.0, 1.5) / 100 - (0.04 if gap > 8 else 0.0)  # limit-up names fade
        drift = max(-0.08, min(0.08, -gap / 100))  # the morning gives back part of the gap
        morning = simulate_continuous(rng, m, MORNING, drift, hhmmss(open_s))
        # The afternoon starts where the day has drifted (the recording skips the middle of the day).
        day_close = c.prev_close * (1 + max(-0.09, min(0.09, day_move)))
        level = to_tick(day_close)
        m.bid, m.ask = tick_down(level), level
        afternoon = simulate_continuous(rng, m, AFTERNOON, rng.gauss(0.0, 0.03), hhmmss(open_s))
        last = (
            int(next(u for u in reversed(afternoon) if u.tr_id == H0ZFCNT0).fields[2])
            if any(u.tr_id == H0ZFCNT0 for u in afternoon)
            else level
        )
        close_target = last * (1 + rng.gauss(0.0, 0.35) / 100)
        closing = simulate_call(
            rng,
            c,
            CLOSING,
            last,
            close_target,
            int(c.depth * rng.uniform(0.5, 0.9)),
            c.code in zero_start_close,
        )
        updates += [*pre, opening, *morning, *afternoon, *closing]
        updates.append(auction_print(m, close_s, closing, hhmmss(open_s)))
        updates += call_books(rng, m, PRE_OPEN, printed) + call_books(rng, m, CLOSING, to_tick(close_target))
    order = {H0ZFANC0: 0, H0ZFASP0: 1, H0ZFCNT0: 2}
    # Within a second: expected fills, the auction print (right after its call's last update), books, trades.
    updates.sort(key=lambda u: (u.second, order[u.tr_id] if u.seq < 10**6 else 0.5, u.seq, u.contract.code))
    return updates


def frames_of_second(
    rng: random.Random, updates: list[Update], peak: bool
) -> list[tuple[str, list[list[str]]]]:
    """
    Group one second's records into ``(tr_id, records)`` frames: one record a frame off-peak,
    batches of 2-6 expected fills at the peaks of a call, and now and then 2-3 trades in one frame.
    A frame's records share one TR and one width (the 7-field contract never shares a frame).
    """
    frames: list[tuple[str, list[list[str]]]] = []
    pending: list[Update] = []

    def flush() -> None:
        if not pending:
            return
        tr_id = pending[0].tr_id
        if tr_id == H0ZFANC0 and peak:
            by_width: dict[int, list[list[str]]] = {}
            for u in pending:
                by_width.setdefault(len(u.fields), []).append(u.fields)
            for records in by_width.values():
                i = 0
                while i < len(records):
                    n = rng.randint(2, 6)
                    frames.append((tr_id, records[i : i + n]))
                    i += n
        elif tr_id == H0ZFCNT0:
            i = 0
            while i < len(pending):
                n = rng.randint(2, 3) if rng.random() < 0.15 else 1
                frames.append((tr_id, [u.fields for u in pending[i : i + n]]))
                i += n
        else:
            frames.extend((tr_id, [u.fields]) for u in pending)
        pending.clear()

    for u in updates:
        if pending and (u.tr_id != pending[0].tr_id or u.seq >= 10**6):
            flush()
        pending.append(u)
        if u.seq >= 10**6:  # an auction print is a frame of its own
            flush()
    flush()
    return frames


def master_rows() -> list[MasterRow]:
    """The day's master: every contract of the sample, as KIS lists it."""
    return [
        MasterRow(
            product_type="1",
            code=c.code,
            std_code=standard_code(c.code, 2026, 12),
            name=f"{c.underlying_name}   F 202612 (  10)",
            month_class="1",
            underlying=c.underlying,
            underlying_name=c.underlying_name,
            year=2026,
            month=12,
            multiplier=10,
        )
        for c in CONTRACTS
    ]


def write_capture(out: Path, seed: int, date: str) -> tuple[int, int, int]:
    """Write the capture to `out`; return (messages, frames with several records, records)."""
    rng = random.Random(seed)
    day = dt.date.fromisoformat(date)
    midnight_ns = int(dt.datetime.combine(day, dt.time(), KST).timestamp()) * NS
    updates = generate_updates(rng)
    pre_peak = (kst_seconds(PRE_OPEN[1]) - 45, kst_seconds(PRE_OPEN[1]) - 1)
    close_peak = (kst_seconds(CLOSING[1]) - 45, kst_seconds(CLOSING[1]) - 1)

    last_ts = 0

    def stamp(second: int, latency_ms: float) -> int:
        """A receive time a few ms after the frame's second, strictly increasing."""
        nonlocal last_ts
        ts = max(midnight_ns + second * NS + int(latency_ms * MS), last_ts + rng.randint(150_000, 900_000))
        last_ts = ts
        return ts

    header = {
        "created": f"{date}T08:29:50+09:00",
        "host": "synthetic",
        "tr_ids": list(TRS),
        "codes": [c.code for c in CONTRACTS],
        "synthetic": True,
        "generator": f"scripts/make_sample.py --seed {seed} --date {date}",
    }
    stats = [0, 0, 0]
    with tempfile.TemporaryDirectory() as tmp:
        writer = CaptureWriter(tmp, compress=False, header=header, clock=lambda: 0.0)
        with writer:
            open_s = kst_seconds("08:29:50")
            writer.write_event(stamp(open_s, 120), "open", url=WS_URL)
            for i, (c, tr_id) in enumerate((c, tr) for c in CONTRACTS for tr in TRS):
                sent = stamp(open_s + 1 + i // 10, 100 * (i % 10))
                writer.write_event(sent, "subscribe", tr_id=tr_id, tr_key=c.code)
                ack = build_ack(
                    tr_id,
                    c.code,
                    "OPSP0000",
                    iv=f"{rng.getrandbits(64):016x}",
                    key=f"{rng.getrandbits(128):032x}",
                )
                writer.write_message(stamp(open_s + 1 + i // 10, 100 * (i % 10) + rng.uniform(8, 25)), ack)
                stats[0] += 1

            ping_at = open_s + rng.randint(8, 12)
            close_s = kst_seconds("15:46:00")
            by_second: dict[int, list[Update]] = {}
            for u in updates:
                by_second.setdefault(u.second, []).append(u)
            seconds = sorted(set(by_second) | {close_s})
            for second in seconds:
                while ping_at < second:
                    pingpong = build_pingpong(f"{date.replace('-', '')}{hhmmss(ping_at)}")
                    writer.write_message(stamp(ping_at, rng.uniform(2, 6)), pingpong)
                    stats[0] += 1
                    ping_at += rng.randint(10, 14)
                batch = by_second.get(second)
                if not batch:
                    continue
                peak = any(lo <= second <= hi for lo, hi in (pre_peak, close_peak))
                latency = rng.uniform(3, 9)
                for tr_id, records in frames_of_second(rng, batch, peak):
                    writer.write_message(stamp(second, latency), build_data_frame(tr_id, records))
                    latency += rng.uniform(0.3, 2.5)
                    stats[0] += 1
                    stats[1] += len(records) > 1
                    stats[2] += len(records)
            writer.write_event(stamp(close_s, 50), "close", code=1000, reason="recorder stopped")
        (written,) = writer.paths
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(written.read_bytes())
    master_snapshot_path(out.parent, day).write_bytes(build_master(master_rows()))
    return stats[0], stats[1], stats[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument("--date", default=DEFAULT_DATE, help=f"KST trading date (default {DEFAULT_DATE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output file (default %(default)s)")
    args = parser.parse_args(argv)
    messages, multi, records = write_capture(args.out, args.seed, args.date)
    size = args.out.stat().st_size
    print(
        f"Wrote {args.out} ({size / 1e6:.2f} MB): {messages:,} messages, {records:,} records, "
        f"{multi:,} multi-record frames; and its master "
        f"{master_snapshot_path(args.out.parent, dt.date.fromisoformat(args.date)).name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
