"""
Pieces of ``benchmarks/live.py`` that the client process imports by path: sequence-numbered frames,
the TradingNode config, and the measuring strategy.

Every record carries its sequence number in ``ANTC_CNQN`` (the quantity), so a received
`KISExpectedFill` can be matched with the simulator's send time of its frame without keeping the
record: the strategy writes the receive time into a preallocated array at that index (latency
mode) or only checks that numbers arrive in order without gaps (count mode, for the memory run).
"""

from __future__ import annotations

import asyncio
import cProfile
import datetime as dt
import gc
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Final

import numpy as np
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import DataType
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import H0ZFASP0
from kis_adapter.protocol import H0ZFCNT0
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol.trs import h0zfasp0
from kis_adapter.protocol.trs import h0zfcnt0
from kis_adapter.simulator import MASTER_PATH
from kis_adapter.types import KISExpectedFill

CODES: Final = tuple(f"A{10 + i:02d}612" for i in range(41))  # 41: the KIS per-session cap
START_TS: Final = 1_795_477_200_000_000_000  # 2026-11-24 08:40:00 KST, the opening call
QUANTITY_FIELD: Final = 7  # ANTC_CNQN: where the sequence number travels
ALL_RECEIVED: Final = "all records received"  # the strategy's stop reason when nothing was lost
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (cheap enough for a 4 Hz sampler)."""
    with open("/proc/self/statm", "rb") as file:
        return int(file.read().split()[1]) * _PAGE


# -- FRAMES ---------------------------------------------------------------------------------------


def _record(code: str, seq: int) -> tuple[str, ...]:
    """One valid 8-field H0ZFANC0 record whose quantity is `seq`."""
    second = 8 * 3600 + 40 * 60 + (seq // 1000) % 300
    hhmmss = f"{second // 3600:02d}{second % 3600 // 60:02d}{second % 60:02d}"
    price = 75_000 + (seq % 40) * 50
    change = price - 75_500
    sign = "2" if change > 0 else ("3" if change == 0 else "5")
    return (code, hhmmss, str(price), str(change), sign, f"{change * 100 / 75_500:.2f}", "311", str(seq))


def build_frames(
    n_records: int,
    codes: tuple[str, ...],
    *,
    multi_fraction: float = 0.0,
    records_per_frame: int = 1,
    record_interval_ns: int = 1_000_000,
    seed: int = 3,
) -> list[tuple[int, str]]:
    """
    ``(ts, frame)`` pairs carrying records ``0 .. n_records-1`` in order, cycling through `codes`.

    A frame holds `records_per_frame` records; with `multi_fraction` > 0, that share of the records
    travels in frames of 2 to 5 records instead (as KIS batches at the open). A frame is stamped
    with its first record's time, so the replay paces records at one per `record_interval_ns`.
    """
    rng = random.Random(seed)
    frames: list[tuple[int, str]] = []
    seq = in_multi = 0
    while seq < n_records:
        if multi_fraction > 0 and in_multi < multi_fraction * (seq + 1):
            size = rng.randint(2, 5)
            in_multi += size
        else:
            size = records_per_frame
        size = min(size, n_records - seq)
        records = [_record(codes[(seq + j) % len(codes)], seq + j) for j in range(size)]
        frames.append((START_TS + seq * record_interval_ns, build_data_frame(H0ZFANC0, records)))
        seq += size
    return frames


# Three TRs in continuous trading (issue 9): the sequence number travels in a size, + 1 (never 0).
TRADE_SEQ_FIELD: Final = h0zfcnt0.LAYOUT["LAST_CNQN"]  # TradeTick.size
BOOK_SEQ_FIELD: Final = h0zfasp0.LAYOUT["BIDP_RSQN1"]  # the depth's best bid size and the quote's bid_size
SEQ_FIELDS: Final = {
    H0ZFANC0: (QUANTITY_FIELD, 0),
    H0ZFCNT0: (TRADE_SEQ_FIELD, 1),
    H0ZFASP0: (BOOK_SEQ_FIELD, 1),
}
CONTINUOUS_START: Final = 9 * 3600  # 09:00:00 KST: trades and books outside the single-price calls
TR_MIX: Final = ((H0ZFANC0, 0.1), (H0ZFCNT0, 0.45), (H0ZFASP0, 0.45))  # share of records per TR


def _hhmmss(second: int) -> str:
    return f"{second // 3600:02d}{second % 3600 // 60:02d}{second % 60:02d}"


class _TradeState:
    """Cumulative volumes of one code, so every trade is consistent (ACML_VOL grows by its size)."""

    __slots__ = ("buy", "sell", "volume")

    def __init__(self) -> None:
        self.volume = self.buy = self.sell = 0


def _trade_record(code: str, seq: int, state: _TradeState) -> tuple[str, ...]:
    """One 49-field H0ZFCNT0 record of continuous trading whose size is `seq` + 1."""
    size = seq + 1
    state.volume += size
    if seq % 2:
        state.sell += size
    else:
        state.buy += size
    fields = ["0"] * h0zfcnt0.LAYOUT.width
    price = 75_000 + (seq % 20) * 100
    values = {
        "FUTS_SHRN_ISCD": code,
        "BSOP_HOUR": _hhmmss(CONTINUOUS_START + (seq // 1000) % 3600),
        "STCK_PRPR": str(price),
        "PRDY_VRSS_SIGN": "2",
        "PRDY_VRSS": str(price - 74_900),
        "LAST_CNQN": str(size),
        "ACML_VOL": str(state.volume),
        "SELN_CNTG_SMTN": str(state.sell),
        "SHNU_CNTG_SMTN": str(state.buy),
        "ASKP1": str(price + 100),
        "BIDP1": str(price),
    }
    for name, value in values.items():
        fields[h0zfcnt0.LAYOUT[name]] = value
    return tuple(fields)


def _book_record(code: str, seq: int) -> tuple[str, ...]:
    """One 68-field H0ZFASP0 snapshot of continuous trading (10 levels a side, 100 KRW apart)."""
    fields = ["0"] * h0zfasp0.LAYOUT.width
    layout = h0zfasp0.LAYOUT
    best_bid = 75_000 + (seq % 20) * 100
    fields[layout["FUTS_SHRN_ISCD"]] = code
    fields[layout["BSOP_HOUR"]] = _hhmmss(CONTINUOUS_START + (seq // 1000) % 3600)
    for level in range(1, 11):
        fields[layout[f"ASKP{level}"]] = str(best_bid + 100 * level)
        fields[layout[f"BIDP{level}"]] = str(best_bid - 100 * (level - 1))
        fields[layout[f"ASKP_CSNU{level}"]] = str(level)
        fields[layout[f"BIDP_CSNU{level}"]] = str(level)
        fields[layout[f"ASKP_RSQN{level}"]] = str(10 * level)
        fields[layout[f"BIDP_RSQN{level}"]] = str(10 * level)
    fields[BOOK_SEQ_FIELD] = str(seq + 1)
    return tuple(fields)


def build_mixed_frames(
    n_records: int,
    codes: tuple[str, ...],
    *,
    multi_fraction: float = 0.2,
    record_interval_ns: int = 1_000_000,
    seed: int = 5,
) -> list[tuple[int, str]]:
    """
    Like `build_frames`, with all three TRs (`TR_MIX`): each frame is one TR, drawn at random with
    those weights; its records cycle through `codes`. Trades and books are in continuous trading.
    """
    rng = random.Random(seed)
    trs = [tr for tr, _ in TR_MIX]
    weights = [w for _, w in TR_MIX]
    trades = {code: _TradeState() for code in codes}
    frames: list[tuple[int, str]] = []
    seq = in_multi = 0
    while seq < n_records:
        if multi_fraction > 0 and in_multi < multi_fraction * (seq + 1):
            size = rng.randint(2, 5)
            in_multi += size
        else:
            size = 1
        size = min(size, n_records - seq)
        tr_id = rng.choices(trs, weights)[0]
        records = []
        for j in range(size):
            code, n = codes[(seq + j) % len(codes)], seq + j
            if tr_id == H0ZFCNT0:
                records.append(_trade_record(code, n, trades[code]))
            elif tr_id == H0ZFASP0:
                records.append(_book_record(code, n))
            else:
                records.append(_record(code, n))
        frames.append((START_TS + seq * record_interval_ns, build_data_frame(tr_id, records)))
        seq += size
    return frames


def send_times(sent: list[tuple[int, str]], n_records: int) -> np.ndarray:
    """Send time per sequence number (-1 if never sent) from a simulator connection's `sent` list."""
    out = np.full(n_records, -1, dtype=np.int64)
    for ts, text in sent:
        if not text.startswith("0|"):
            continue  # acks, PINGPONG
        _, tr_id, count, payload = text.split("|", 3)
        fields = payload.split("^")
        width = len(fields) // int(count)
        index, offset = SEQ_FIELDS[tr_id]
        for seq in fields[index::width]:
            out[int(seq) - offset] = ts
    return out


# -- NODE CONFIG ----------------------------------------------------------------------------------


def node_config(
    ws_url: str,
    rest_url: str,
    codes: tuple[str, ...],
    strategy: dict[str, Any],
    tr_ids: tuple[str, ...] = (H0ZFANC0,),
) -> dict:
    """A TradingNodeConfig as ``config/live.json`` declares it, pointed at the simulator (and its master)."""
    return {
        "trader_id": "BENCH-001",
        "timeout_connection": 30.0,
        "timeout_disconnection": 5.0,
        "timeout_post_stop": 0.1,
        "logging": {"log_level": "WARNING"},
        "data_clients": {
            "KIS": {
                "path": "kis_adapter.config:KISDataClientConfig",
                "factory": {"path": "kis_adapter.factories:KISLiveDataClientFactory"},
                "config": {
                    "codes": list(codes),
                    "tr_ids": list(tr_ids),
                    "master_url": f"{rest_url}{MASTER_PATH}",
                    "ws_url": ws_url,
                    "rest_url": rest_url,
                    "subscribe_interval_secs": 0.0,  # the simulator does not block bursts; KIS would
                    "stall_timeout_secs": 60.0,
                    "stats_interval_secs": 60.0,
                },
            }
        },
        "strategies": [
            {
                "strategy_path": f"{__name__}:LiveBenchStrategy",
                "config_path": f"{__name__}:LiveBenchConfig",
                "config": strategy,
            }
        ],
    }


# -- STRATEGY -------------------------------------------------------------------------------------


class LiveBenchConfig(StrategyConfig, frozen=True):
    """
    Parameters
    ----------
    expected : int
        Records to receive; the node is shut down when they have all arrived.
    output_dir : str
        Where ``summary.json`` (and ``recv_ns.npy`` / ``init_ns.npy`` with `latency`) are written on stop.
    latency : bool, default True
        Keep the receive time per sequence number (a preallocated array of `expected` entries);
        False keeps O(1) state: counts and the order check only.
    seq_modulo : int, optional
        Sequence numbers restart at 0 after this many (the simulator loops over one pass).
    idle_secs : float, default 3.0
        Shut down when nothing arrived for this long after the first record (records were lost).
    max_secs : float, default 120.0
        Shut down after this long whatever arrived.
    rss_interval_secs : float, default 0.25
        RSS sampling period.
    market_codes : tuple[str, ...], default ()
        Also subscribe trades, quotes and 10-level depth of these codes (the three-TR scenario).
    profile : bool, default False
        Run cProfile from the first record to the last and write ``client.prof``: the steady
        state only, without imports and node start-up.

    """

    expected: int
    output_dir: str
    latency: bool = True
    seq_modulo: int | None = None
    idle_secs: float = 3.0
    max_secs: float = 120.0
    rss_interval_secs: float = 0.25
    profile: bool = False
    market_codes: tuple[str, ...] = ()


class LiveBenchStrategy(Strategy):
    """Stamp every `KISExpectedFill` on arrival; O(1) work and (without `latency`) O(1) state per record."""

    def __init__(self, config: LiveBenchConfig) -> None:
        super().__init__(config)
        self._expected = config.expected
        self._modulo = config.seq_modulo or config.expected
        size = config.expected if config.latency else 0
        # Touch every page now, so filling the arrays later adds no RSS during the run.
        self._recv_ns = np.full(size, -1, dtype=np.int64)
        self._init_ns = np.full(size, -1, dtype=np.int64)
        self._latency = config.latency
        self.received = 0
        self.objects = 0  # Nautilus objects (a book record is a depth and a quote)
        self._last_seq = -1
        self._next_seq = 0
        self._gaps = 0  # records skipped over (a sequence number jumped ahead)
        self._backwards = 0  # duplicates or reordering (a sequence number went back)
        self._first_recv_ns = 0
        self._last_recv_ns = 0
        self._rss_first = 0
        self._rss_last = 0
        self._cpu_first = self._cpu_last = 0.0  # process CPU time (every thread) at the first/last record
        self._gc_started = 0.0
        self._gc_secs = 0.0  # time in garbage collection from the first record to the last
        self._gc_runs = [0, 0, 0]  # collections per generation in that span
        self._gc_by_gen = [0.0, 0.0, 0.0]
        self._rss_samples: list[tuple[int, int]] = []  # (records so far, RSS), one per tick
        self._progress_at = (0, time.monotonic())
        self._started = time.monotonic()
        self._done = False
        self._stop_reason = "stopped before the last record"
        self._profiler = cProfile.Profile() if config.profile else None

    def on_start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self.subscribe_data(DataType(KISExpectedFill), client_id=ClientId("KIS"))
        for code in self.config.market_codes:
            instrument_id = InstrumentId.from_str(f"{code}.KRX")
            self.subscribe_trade_ticks(instrument_id)
            self.subscribe_quote_ticks(instrument_id)
            self.subscribe_order_book_depth(instrument_id, book_type=BookType.L2_MBP, depth=10)
        interval = dt.timedelta(seconds=self.config.rss_interval_secs)
        self.clock.set_timer("live_bench_tick", interval, callback=self._on_tick)

    def on_data(self, data) -> None:
        self._arrive(data.quantity, data.ts_init)

    def on_trade_tick(self, tick) -> None:
        self._arrive(int(tick.size) - 1, tick.ts_init)

    def on_order_book_depth(self, depth) -> None:
        self._arrive(int(depth.bids[0].size) - 1, depth.ts_init)

    def on_quote_tick(self, tick) -> None:
        self._arrive(int(tick.bid_size) - 1, tick.ts_init)

    def _arrive(self, seq: int, ts_init: int) -> None:
        now = time.time_ns()
        self.objects += 1
        if seq == self._last_seq:
            return  # the quote of the book record whose depth just arrived: one record, two objects
        self._last_seq = seq
        if self._latency:
            self._recv_ns[seq] = now
            self._init_ns[seq] = ts_init
        seq %= self._modulo
        if seq != self._next_seq:
            if seq > self._next_seq:
                self._gaps += seq - self._next_seq
            else:
                self._backwards += 1
        self._next_seq = (seq + 1) % self._modulo
        self.received += 1
        self._last_recv_ns = now
        if self.received == 1:
            self._first_recv_ns = now
            self._cpu_first = time.process_time()
            self._rss_first = rss_bytes()
            if self._profiler is not None:
                self._profiler.enable()
        if self.received == self._expected:
            self._cpu_last = time.process_time()
            self._rss_last = rss_bytes()
            self._finish(ALL_RECEIVED)

    def _on_gc(self, phase: str, info: dict) -> None:
        """Time the garbage collector's passes (from the first record on): its share of the CPU."""
        if phase == "start":
            self._gc_started = time.thread_time()
        elif self._first_recv_ns and not self._done:
            spent = time.thread_time() - self._gc_started
            self._gc_secs += spent
            self._gc_runs[info["generation"]] += 1
            self._gc_by_gen[info["generation"]] += spent

    def _on_tick(self, _event: TimeEvent) -> None:
        if self._done:
            return
        self._rss_samples.append((self.received, rss_bytes()))
        now = time.monotonic()
        count, since = self._progress_at
        if self.received != count:
            self._progress_at = (self.received, now)
        elif self.received and now - since > self.config.idle_secs:
            self._finish(f"no record for {self.config.idle_secs:g}s after {self.received:,}")
        if now - self._started > self.config.max_secs:
            self._finish(f"{self.config.max_secs:g}s deadline")

    def _finish(self, reason: str) -> None:
        if not self._done:
            self._done = True
            if self._profiler is not None:
                self._profiler.disable()
            self._stop_reason = reason
            self.shutdown_system(f"benchmark: {reason}")

    def on_stop(self) -> None:
        out = Path(self.config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if self._profiler is not None:
            self._profiler.disable()
            self._profiler.dump_stats(out / "client.prof")
        if self._latency:
            np.save(out / "recv_ns.npy", self._recv_ns)
            np.save(out / "init_ns.npy", self._init_ns)
        summary = {
            "received": self.received,
            "objects": self.objects,
            "gaps": self._gaps,
            "backwards": self._backwards,
            "first_recv_ns": self._first_recv_ns,
            "last_recv_ns": self._last_recv_ns,
            "rss_first": self._rss_first,
            "rss_last": self._rss_last or rss_bytes(),
            "rss_samples": self._rss_samples,
            "stop_reason": self._stop_reason,
            "cpu_secs": self._cpu_last - self._cpu_first if self._cpu_last else 0.0,
            "gc_secs": self._gc_secs,
            "gc_runs": self._gc_runs,
            "gc_by_gen": self._gc_by_gen,
        }
        (out / "summary.json").write_text(json.dumps(summary))


@dataclass(frozen=True, slots=True)
class ClientSummary:
    """What the strategy wrote on stop."""

    received: int
    objects: int
    gaps: int
    backwards: int
    first_recv_ns: int
    last_recv_ns: int
    rss_first: int
    rss_last: int
    rss_samples: list[tuple[int, int]]
    stop_reason: str
    cpu_secs: float = 0.0  # CPU time of the client process from its first record to its last
    gc_secs: float = 0.0  # time in garbage collection in that span
    gc_runs: tuple[int, int, int] = (0, 0, 0)  # collections per generation in that span
    gc_by_gen: tuple[float, float, float] = (0.0, 0.0, 0.0)  # seconds per generation

    @classmethod
    def read(cls, directory: Path) -> ClientSummary:
        return cls(**json.loads((directory / "summary.json").read_text()))


# -- FLOOR: A BARE WEBSOCKETS READER ---------------------------------------------------------------


def floor_config(
    ws_url: str, rest_url: str, codes: tuple[str, ...], tr_ids: tuple[str, ...], strategy: dict
) -> dict:
    """What `run_floor` needs: the simulator's URLs, the registrations, where to write the summary."""
    return {
        "ws_url": ws_url,
        "rest_url": rest_url,
        "codes": list(codes),
        "tr_ids": list(tr_ids),
        "expected": strategy["expected"],
        "output_dir": strategy["output_dir"],
    }


async def _floor(config: dict) -> dict:
    """
    Approval key, connect, register, then ``async for message in ws``: count records by the frame
    header only. No session, decoder, objects or Nautilus: the most a websockets client can read.
    """
    from websockets.asyncio.client import connect

    from kis_adapter.protocol import build_subscription
    from kis_adapter.session.approval import Credentials
    from kis_adapter.session.approval import request_approval_key

    credentials = Credentials(os.environ["KIS_APP_KEY"], os.environ["KIS_APP_SECRET"])
    key = await request_approval_key(config["rest_url"], credentials, 10.0)
    expected = config["expected"]
    received = 0
    first = last = 0
    cpu_first = 0.0
    stop = "stopped before the last record"
    async with connect(config["ws_url"], compression=None, max_queue=256, ping_interval=None) as ws:
        for code in config["codes"]:
            for tr_id in config["tr_ids"]:
                await ws.send(build_subscription(key, tr_id, code))
        while True:
            try:
                message = await asyncio.wait_for(ws.recv(), 3.0 if received else 60.0)
            except TimeoutError:
                stop = f"no record for 3s after {received:,}"
                break
            if message[:2] != "0|":
                if message[:1] == "{" and "PINGPONG" in message:
                    await ws.send(message)
                continue
            now = time.time_ns()
            if not received:
                first = now
                cpu_first = time.process_time()
            received += int(message[message.index("|", 2) + 1 : message.index("|", 2) + 4])
            last = now
            if received >= expected:
                stop = ALL_RECEIVED
                break
    return {
        "received": received,
        "objects": 0,
        "gaps": 0,
        "backwards": 0,
        "first_recv_ns": first,
        "last_recv_ns": last,
        "rss_first": 0,
        "rss_last": rss_bytes(),
        "rss_samples": [],
        "stop_reason": stop,
        "cpu_secs": time.process_time() - cpu_first if received else 0.0,
    }


def run_floor(config_path: str) -> None:
    """Entry point of the floor client process (on uvloop, as a TradingNode's loop is)."""
    import uvloop

    config = json.loads(Path(config_path).read_text())
    summary = uvloop.run(_floor(config))
    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["floor"]:
        run_floor(sys.argv[2])
