"""
Generate the bundled sample capture: one synthetic KRX stock-futures day of H0ZFANC0 data.

Real KIS captures cannot be redistributed, so the demo ships this seeded stand-in instead. It has
the shapes a real recording has: the pre-open call (08:30-08:45 KST) and the closing call
(15:35-15:45 KST) of ten December-2026 stock-futures contracts in the new code scheme, expected
prices on the KRX tick ladder drifting around the previous close, expected quantity building up
through each call, phase codes (311 → 112, 121 → 129), multi-record frames at the peaks, subscribe
acks and PINGPONG interleaved, session events, one contract in the legacy 7-field layout and
zero-price records (no expected price yet) at the start of a call.

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
from kis_adapter.protocol import H0ZFANC0
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
PRICE_LIMIT = 0.10  # stage-1 daily limit of stock futures, as a fraction of the previous close


@dataclass(frozen=True)
class Contract:
    """One stock-futures contract of the sample; codes follow the 2026 scheme ``A`` + underlying + YMM."""

    code: str
    name: str
    prev_close: int
    depth: int  # expected quantity reached at the end of the pre-open call, contracts
    legacy: bool = False  # published in the 7-field layout (no ANTC_CNQN)
    gap_pct: float | None = None  # fixed opening gap; None draws one from the seed


# Underlying codes other than 11 (Samsung Electronics) and 50 (SK hynix) are illustrative.
CONTRACTS: tuple[Contract, ...] = (
    Contract("A11612", "Samsung Electronics Dec-26", 98_600, 4_200),
    Contract("A50612", "SK hynix Dec-26", 587_000, 1_900),
    Contract("A13612", "Hyundai Motor Dec-26", 246_500, 900),
    Contract("A16612", "NAVER Dec-26", 218_500, 650),
    Contract("A17612", "Kakao Dec-26", 41_350, 2_400),
    Contract("A21612", "LG Display Dec-26", 11_230, 3_100, gap_pct=12.0),
    Contract("A25612", "KEPCO Dec-26", 27_850, 1_700),
    Contract("A31612", "Samsung Heavy Ind. Dec-26", 14_870, 2_800),
    Contract("A3C612", "Pan Ocean Dec-26", 3_905, 1_500),
    Contract("A3G612", "Korea Line Dec-26", 1_842, 1_200, legacy=True),
)


def tick_size(price: float) -> int:
    """KRX tick for a price level (stock-futures ladder, same as KRX equities since 2023)."""
    for bound, tick in ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500)):
        if price < bound:
            return tick
    return 1_000


def to_tick(price: float) -> int:
    tick = tick_size(price)
    return max(tick, round(price / tick) * tick)


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
    limit_up, limit_down = price_limits(c.prev_close)
    if price == 0:
        sign = 5
    elif price >= limit_up:
        sign = 1
    elif price <= limit_down:
        sign = 4
    else:
        sign = 2 if change > 0 else 5 if change < 0 else 3
    rate = f"{change / c.prev_close * 100:.2f}"
    fields = [c.code, hhmmss, str(price), str(change), str(sign), rate, phase]
    return fields if c.legacy else [*fields, str(quantity)]


@dataclass(frozen=True)
class Update:
    second: int  # seconds since KST midnight
    seq: int  # order within the second (stable sort key)
    contract: Contract
    fields: list[str]


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


def generate_updates(rng: random.Random) -> list[Update]:
    updates: list[Update] = []
    zero_start_pre = set(rng.sample([c.code for c in CONTRACTS], 3)) | {CONTRACTS[0].code}
    zero_start_close = {rng.choice(CONTRACTS).code}
    for c in CONTRACTS:
        gap = c.gap_pct if c.gap_pct is not None else rng.gauss(0.0, 1.3)
        open_price = c.prev_close * (1 + gap / 100)
        updates += simulate_call(
            rng, c, PRE_OPEN, c.prev_close, open_price, c.depth, c.code in zero_start_pre
        )
        day_move = gap / 100 + rng.gauss(0.0, 1.5) / 100 - (0.04 if gap > 8 else 0.0)  # limit-up names fade
        day_close = c.prev_close * (1 + max(-0.09, min(0.09, day_move)))
        close_target = day_close * (1 + rng.gauss(0.0, 0.35) / 100)
        updates += simulate_call(
            rng,
            c,
            CLOSING,
            day_close,
            close_target,
            int(c.depth * rng.uniform(0.5, 0.9)),
            c.code in zero_start_close,
        )
    updates.sort(key=lambda u: (u.second, u.seq, u.contract.code))  # stable within a contract
    return updates


def frames_of_second(rng: random.Random, updates: list[Update], peak: bool) -> list[list[list[str]]]:
    """
    Group one second's records into frames: one record a frame off-peak, batches of 2-6 at peaks.

    A frame's records share one width, so the 7-field contract never shares a frame with the rest.
    """
    if not peak:
        return [[u.fields] for u in updates]
    frames: list[list[list[str]]] = []
    by_width: dict[int, list[list[str]]] = {}
    for u in updates:
        by_width.setdefault(len(u.fields), []).append(u.fields)
    for records in by_width.values():
        i = 0
        while i < len(records):
            n = rng.randint(2, 6)
            frames.append(records[i : i + n])
            i += n
    return frames


def write_capture(out: Path, seed: int, date: str) -> tuple[int, int, int]:
    """Write the capture to `out`; return (messages, frames with several records, records)."""
    rng = random.Random(seed)
    day = dt.date.fromisoformat(date)
    midnight_ns = int(dt.datetime.combine(day, dt.time(), KST).timestamp()) * NS
    updates = generate_updates(rng)
    pre_peak = (kst_seconds(PRE_OPEN[1]) - 45, kst_seconds(PRE_OPEN[1]))
    close_peak = (kst_seconds(CLOSING[1]) - 45, kst_seconds(CLOSING[1]))

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
        "tr_ids": [H0ZFANC0],
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
            for i, c in enumerate(CONTRACTS):
                sent = stamp(open_s + 1, 100 * i)
                writer.write_event(sent, "subscribe", tr_id=H0ZFANC0, tr_key=c.code)
                ack = build_ack(
                    H0ZFANC0,
                    c.code,
                    "OPSP0000",
                    iv=f"{rng.getrandbits(64):016x}",
                    key=f"{rng.getrandbits(128):032x}",
                )
                writer.write_message(stamp(open_s + 1, 100 * i + rng.uniform(8, 25)), ack)
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
                for records in frames_of_second(rng, batch, peak):
                    writer.write_message(stamp(second, latency), build_data_frame(H0ZFANC0, records))
                    latency += rng.uniform(0.3, 2.5)
                    stats[0] += 1
                    stats[1] += len(records) > 1
                    stats[2] += len(records)
            writer.write_event(stamp(close_s, 50), "close", code=1000, reason="recorder stopped")
        (written,) = writer.paths
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(written.read_bytes())
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
        f"{multi:,} multi-record frames"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
