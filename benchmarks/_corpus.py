"""
A seeded, scalable H0ZFANC0 corpus shared by the benchmarks.

Auction-shaped data: 40 stock-futures contracts quoted through the pre-open (08:30-08:45 KST) and
closing (15:35-15:45 KST) calls of consecutive days, expected prices on the KRX tick ladder around a
previous close, signed change/percent/sign consistent with the price, phase codes per call, and
expected quantity growing through each call. A chosen fraction of the *records* (default 20 %)
travels in multi-record frames of 2 to 5 records, the rest one record per frame, as KIS sends at
peaks. Messages are 1 ms apart, so a million records cover about one call.

Everything is a generator: `iter_messages` streams ``(ts_recv_ns, frame)`` without holding the
corpus, so `write_capture` can build a 5-million-record capture in constant memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kis_adapter.capture import CaptureWriter
from kis_adapter.protocol import H0ZFANC0
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
