"""
The recorder at scale: throughput over 4 sessions with zero loss, CPU per 10k frames/s, RSS over a
simulated week.

Usage::

    .venv/bin/python benchmarks/recorder.py           # about 1.5 min on 2 cores
    .venv/bin/python benchmarks/recorder.py --quick   # about 30 s

Prints Markdown tables and the targets of issue #11; asserts nothing (timings are not tests).

How it runs
-----------
Throughput: a `KISSimulator` in a thread of this process serves generated H0ZFANC0 frames (one
record each, the auction feed, 55 bytes) as fast as it can (``speed=0``) to 4 app keys with 41
registrations each (164 codes). The recorder is the real command in its own process, as a user
runs it: ``kis-adapter record --codes ... --out DIR --metrics-port P`` with ``KIS_CREDENTIALS_FILE``
holding the 4 keys (the service: 4 sessions, one capture). The replay starts once all 164
registrations are acked; the run ends when the recorder's ``kis_recorder_frames_total`` reaches what
the simulator sent, then SIGTERM. Zero loss is checked on the capture itself: every data frame sent
is in it, in each session's order. Frames/s is (frames - 1) / (last - first receive time), from
the capture's ``ts``; CPU is the recorder process's user+system time (``/proc/<pid>/stat``) over
the whole run, reported per 10k frames/s (cores busy for each 10k frames/s).

Two senders: the simulator's own replay (every part real; its Python send path tops out below what
the recorder takes), and a fast sender: the same simulator for approval, subscriptions and acks,
then every connection's frames written straight to its socket, pre-framed (RFC 6455 text frames),
so the figure is the recorder's capacity. The target is judged on the fast sender.

Baseline, in the same run: the same frames to ONE key with 41 codes through the legacy single-session
path (``kis-adapter record --codes`` with ``KIS_APP_KEY``). Ratios against it say what the service
and its 4 sessions cost or gain, whatever the machine's speed.

Memory: a simulated week. The service runs in this process on a `SimulatedClock` (hours between
windows pass at once), `--week-days` session days of `--frames-per-day` frames each over 4 keys,
against the simulator (``record_sent`` off). RSS of this process (service and simulator together) is
read after each day; growth is from the end of day 1 to the end of the last day. Target < 30 MB.

The simulator is Python and shares this machine's 2 cores: when the recorder keeps up, the figure
is the simulator's sending rate, a floor for the recorder's capacity ("sim-bound" in the table).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kis_adapter import krx  # noqa: E402
from kis_adapter.capture import CaptureReader  # noqa: E402
from kis_adapter.credentials import AppKey  # noqa: E402
from kis_adapter.protocol import build_data_frame  # noqa: E402
from kis_adapter.recorder.clock import SimulatedClock  # noqa: E402
from kis_adapter.recorder.service import RecorderService  # noqa: E402
from kis_adapter.recorder.service import RecordOptions  # noqa: E402
from kis_adapter.session import Credentials  # noqa: E402
from kis_adapter.session import SessionConfig  # noqa: E402
from kis_adapter.simulator import KISSimulator  # noqa: E402
from kis_adapter.simulator import SimulatorThread  # noqa: E402

KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")
KEYS = [
    (f"PSbenchKEY{n}0123456789abcdefghij", f"benchSECRET{n}/0123456789abcdefghijklmnop") for n in range(1, 5)
]
CODES = [f"A{i // 36 + 1}{'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'[i % 36]}612" for i in range(164)]
START_TS = 1_795_477_200_000_000_000  # 2026-11-24 08:40:00 KST
TARGET_RATE = 100_000
TARGET_RSS_MB = 30.0
MB = 1_000_000
_TICKS = os.sysconf("SC_CLK_TCK")


def frames(n: int, codes: list[str]) -> list[tuple[int, str]]:
    """`n` one-record H0ZFANC0 frames cycling through `codes`, 1 ms apart in capture time."""
    out = []
    for i in range(n):
        second = 8 * 3600 + 40 * 60 + (i // 1000) % 300
        hhmmss = f"{second // 3600:02d}{second % 3600 // 60:02d}{second % 60:02d}"
        price = 75_000 + (i % 40) * 50
        change = price - 75_500
        sign = "2" if change > 0 else ("3" if change == 0 else "5")
        record = (
            codes[i % len(codes)],
            hhmmss,
            str(price),
            str(change),
            sign,
            f"{change / 755:.2f}",
            "311",
            str(i),
        )
        out.append((START_TS + i * 1_000_000, build_data_frame("H0ZFANC0", [record])))
    return out


@dataclass
class Run:
    name: str
    sessions: int
    frames: int
    received: int
    seconds: float
    cpu_secs: float
    wall_secs: float
    in_order: bool

    @property
    def rate(self) -> float:
        return (self.received - 1) / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_10k(self) -> float:
        """Cores the recorder kept busy per 10k frames/s of what it received."""
        return (self.cpu_secs / self.wall_secs) / (self.rate / 10_000) if self.rate else 0.0

    @property
    def lost(self) -> int:
        return self.frames - self.received


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_secs(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return -1.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def _ws_frame(text: str) -> bytes:
    """An unmasked server text frame (RFC 6455), as websockets would put it on the wire."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


async def _blast(sim: KISSimulator, data: list[tuple[int, str]]) -> int:
    """
    Write every connection's frames straight to its socket, pre-framed, round robin in 1,000-frame
    chunks, pausing while a socket holds more than 4 MB: a sender far faster than the simulator's
    replay, so the figure is the recorder's capacity. Returns the frames sent.
    """
    plan = []
    for conn in sim.active_connections:
        mine = conn.codes("H0ZFANC0")
        raw = [_ws_frame(text) for _, text in data if text.split("|", 3)[3].split("^", 1)[0] in mine]
        plan.append((conn, [b"".join(raw[i : i + 1000]) for i in range(0, len(raw), 1000)], len(raw)))
    for index in range(max(len(chunks) for _, chunks, _ in plan)):
        for conn, chunks, _ in plan:
            if index < len(chunks):
                transport = conn.ws.transport
                while transport.get_write_buffer_size() > 4 << 20:
                    await asyncio.sleep(0.001)
                transport.write(chunks[index])
    sim.stats.frames_sent += sum(n for _, _, n in plan)
    return sum(n for _, _, n in plan)


def throughput(name: str, n_frames: int, sessions: int, workdir: Path, *, blast: bool = False) -> Run:
    """One recorder process against the simulator; `sessions` = 1 is the legacy single-key path."""
    codes = CODES[: 41 * sessions]
    data = frames(n_frames, codes)
    out = workdir / name
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    port = _free_port()
    credentials = dict(KEYS[:sessions])
    sim = KISSimulator(
        data,
        speed=0,
        credentials=credentials,
        pingpong_interval_secs=None,
        autostart_replay=False,
        record_sent=False,
    )
    with SimulatorThread(sim) as runner:
        env["KIS_MASTER_URL"] = runner.master_url
        argv = [str(KIS_ADAPTER), "record", "--codes", ",".join(codes), "--out", str(out)]
        if os.environ.get("BENCH_PROFILE"):  # cProfile of the recorder process, written on its clean exit
            argv[:1] = [sys.executable, "-m", "cProfile", "-o", f"{os.environ['BENCH_PROFILE']}-{name}.prof"]
            argv.insert(5, "-m")
            argv.insert(6, "kis_adapter.cli")
        argv += ["--ws-url", runner.ws_url, "--rest-url", runner.rest_url, "--stall-timeout", "120"]
        if sessions > 1:
            keys_file = workdir / f"{name}-keys.toml"
            keys_file.write_text(
                "".join(f'[[app_keys]]\napp_key = "{k}"\napp_secret = "{s}"\n' for k, s in KEYS)
            )
            keys_file.chmod(0o600)
            env["KIS_CREDENTIALS_FILE"] = str(keys_file)
            argv += ["--metrics-port", str(port)]
        else:
            env["KIS_APP_KEY"], env["KIS_APP_SECRET"] = KEYS[0]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            runner.call(sim.wait_subscriptions, len(codes), 60, timeout=70)
            cpu0 = _cpu_secs(proc.pid)
            t0 = time.perf_counter()
            if blast:
                runner.call(_blast, sim, data, timeout=300)
            else:
                runner.call(_start, sim)
                runner.call(sim.wait_replay_done, 300, timeout=310)
            sent = sim.stats.frames_sent
            deadline = time.monotonic() + 60
            idle = 0.0
            if sessions > 1:  # the service says what it received
                while _metric(port, "kis_recorder_frames_total") < sent and time.monotonic() < deadline:
                    time.sleep(0.05)
            else:  # no metrics on the one-key path: wait until its capture stops growing
                idle = _wait_until_still(out, deadline)
            wall = time.perf_counter() - t0 - idle
            cpu = _cpu_secs(proc.pid) - cpu0
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{name}: recorder exited {proc.returncode}: {stderr[-2000:]}")
    stamps: list[int] = []
    order_ok = True
    last_seq: dict[str, int] = {}
    for path in sorted(out.glob("kis-*.jsonl*")):
        with CaptureReader(path) as reader:
            for message in reader:
                text = message.frame
                if isinstance(text, str) and text.startswith("0|"):
                    stamps.append(message.ts)
                    fields = text.split("|", 3)[3].split("^")
                    code, seq = fields[0], int(fields[7])
                    if seq <= last_seq.get(code, -1):
                        order_ok = False
                    last_seq[code] = seq
    seconds = (max(stamps) - min(stamps)) / 1e9 if len(stamps) > 1 else 0.0
    return Run(name, sessions, sent, len(stamps), seconds, cpu, wall, order_ok)


def _wait_until_still(out: Path, deadline: float) -> float:
    """
    Wait until the capture files in `out` have not grown for 3 s (the writer flushes every second);
    returns the seconds waited since they last grew, which are not part of the recorder's work.
    """
    size, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = sum(path.stat().st_size for path in out.glob("kis-*.jsonl*"))
        if now != size:
            size, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= 3.0:
            break
        time.sleep(0.2)
    return time.monotonic() - still_since


async def _start(sim: KISSimulator) -> None:
    sim.start_replay()


def week(days: int, per_day: int, workdir: Path) -> list[tuple[dt.date, int, float]]:
    """`days` simulated session days in this process; (date, messages, RSS MB after the day)."""
    codes = CODES[:164]
    data = frames(per_day, codes)
    keys = [AppKey(i, Credentials(k, s)) for i, (k, s) in enumerate(KEYS, 1)]
    calendar = krx.TradingCalendar.regular(dt.date(2026, 11, 1), dt.date(2027, 6, 30))
    rows: list[tuple[dt.date, int, float]] = []
    holder: dict[str, object] = {}

    async def hold(purpose: str, target: int) -> None:
        sim: KISSimulator = holder["sim"]  # type: ignore[assignment]
        service: RecorderService = holder["service"]  # type: ignore[assignment]
        if purpose == "connect" and len(service.windows) >= days:
            service.request_stop("week done")
        if purpose == "disconnect":
            start = holder["timelines"]
            await sim.wait_for(lambda: sim.stats.timelines_started >= start + 4 and sim.replay_done, 120)
            while sum(service.metrics.frames.values()) < sim.stats.frames_sent:
                await asyncio.sleep(0.02)
        if purpose == "connect":
            holder["timelines"] = sim.stats.timelines_started
            if service.windows:
                gc.collect()
                rows.append((service.windows[-1].date, service.windows[-1].messages, _rss_mb()))

    async def main() -> None:
        sim = KISSimulator(
            data, speed=0, credentials=dict(KEYS), pingpong_interval_secs=None, record_sent=False
        )
        async with sim:
            config = SessionConfig(
                ws_url=sim.ws_url,
                rest_url=sim.rest_url,
                subscribe_interval_secs=0.0,
                stats_log_interval_secs=None,
            )
            options = RecordOptions(
                out=workdir / "week",
                codes=tuple(codes),
                schedule=True,
                master_url=sim.master_url,
                stats_period_secs=None,
            )
            clock = SimulatedClock(START_TS - 12 * 3600 * 10**9, hold)
            service = RecorderService(options, config, keys, calendar, clock=clock)
            holder.update(sim=sim, service=service, timelines=0)
            await service.run()

    asyncio.run(main())
    return rows


def _rss_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (about 30 s)")
    parser.add_argument("--frames", type=int, default=600_000, help="frames per throughput run (600,000)")
    parser.add_argument("--week-days", type=int, default=7, help="session days in the memory run (7)")
    parser.add_argument(
        "--frames-per-day", type=int, default=100_000, help="frames per simulated day (100,000)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.week_days, args.frames_per_day = 200_000, 4, 30_000
    load = os.getloadavg()
    print(f"Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; nproc {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="kis-bench-recorder-") as tmp:
        workdir = Path(tmp)
        baseline = throughput("baseline-1-session", args.frames, 1, workdir)
        replayed = throughput("service-4-sessions", args.frames, 4, workdir)
        blast_base = throughput("baseline-1-session-fast-sender", args.frames, 1, workdir, blast=True)
        service = throughput("service-4-sessions-fast-sender", args.frames, 4, workdir, blast=True)
        days = week(args.week_days, args.frames_per_day, workdir)
    print()
    print("| run | sessions | frames sent | received | lost | in order | frames/s | cores per 10k frames/s |")
    print("|---|---|---|---|---|---|---|---|")
    for run in (baseline, replayed, blast_base, service):
        print(
            f"| {run.name} | {run.sessions} | {run.frames:,} | {run.received:,} | {run.lost:,} | "
            f"{'yes' if run.in_order else 'NO'} | {run.rate:,.0f} | {run.cpu_per_10k:.3f} |"
        )
    print()
    print("| simulated day | messages | RSS after the day (MB) |")
    print("|---|---|---|")
    for date, messages, rss in days:
        print(f"| {date} | {messages:,} | {rss:.1f} |")
    growth = days[-1][2] - days[0][2] if len(days) > 1 else 0.0
    print()
    print("Targets (issue #11):")
    met = service.rate >= TARGET_RATE and service.lost == 0 and service.in_order
    print(
        f"  4 sessions, zero loss       {service.rate:,.0f} frames/s, lost {service.lost} "
        f"(target ≥ {TARGET_RATE:,} with 0 lost)  {'met' if met else 'MISSED'}"
    )
    print(
        f"  vs 1-session baseline       {service.rate / blast_base.rate:.2f}× the rate, "
        f"{service.cpu_per_10k / blast_base.cpu_per_10k:.2f}× the CPU per 10k frames/s (fast sender); "
        f"{replayed.rate / baseline.rate:.2f}× the rate through the simulator's replay"
    )
    print(
        f"  CPU per 10k frames/s        {service.cpu_per_10k:.3f} cores (1-session baseline "
        f"{blast_base.cpu_per_10k:.3f}; through the replay {replayed.cpu_per_10k:.3f} "
        f"vs {baseline.cpu_per_10k:.3f})"
    )
    print(
        f"  RSS over {len(days)} simulated days   +{growth:.1f} MB from day 1 to day {len(days)} "
        f"(target < {TARGET_RSS_MB:.0f} MB)  {'met' if growth < TARGET_RSS_MB else 'MISSED'}"
    )
    print(json.dumps({"rate": service.rate, "baseline_rate": baseline.rate, "rss_growth_mb": growth}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
