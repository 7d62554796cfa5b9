"""A simulated week: the schedule's waits pass at once, each session day is recorded for real."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path

from recorder_helpers import app_keys
from recorder_helpers import captures
from recorder_helpers import events_of
from recorder_helpers import make_service
from recorder_helpers import messages_of
from sim_helpers import capture_lines
from sim_helpers import make_tr_frames
from sim_helpers import run_async

from kis_adapter import krx
from kis_adapter.master_files import master_snapshot_path
from kis_adapter.recorder.clock import SimulatedClock
from kis_adapter.recorder.service import RecorderService
from kis_adapter.simulator import KISSimulator

KST = dt.timezone(dt.timedelta(hours=9))
CODES = ("A11612", "A50612")  # one per key: each key's replay starts at its only subscription
# Tue 2026-11-24 evening → Wed 25 regular, Thu 26 closed, Fri 27 shifted an hour, Mon 30 regular.
START = int(dt.datetime(2026, 11, 24, 20, 0, tzinfo=KST).timestamp()) * 10**9
HOLIDAY, LATE = dt.date(2026, 11, 26), dt.date(2026, 11, 27)
DAYS = [dt.date(2026, 11, 25), LATE, dt.date(2026, 11, 30)]


def week_calendar() -> krx.TradingCalendar:
    """Weekdays of Nov-Dec 2026 with a holiday and a late-open (+60 min) day, as overrides add them."""
    regular = krx.TradingCalendar.regular(dt.date(2026, 11, 1), dt.date(2026, 12, 31))
    overrides = krx.CalendarOverrides(
        closed={HOLIDAY: "test holiday"}, shifted={LATE: krx.DayShift(60, 60, "test late open")}
    )
    sessions = {d: krx.DayShift() for d in regular.sessions(regular.first, regular.last)}
    return krx.TradingCalendar(sessions, regular.first, regular.last, overrides)


def ns(date: dt.date, hhmm: str) -> int:
    return krx.kst_ns(date, krx.hms(hhmm))


def run_days(
    tmp_path: Path,
    days: int,
    *,
    on_connect: Callable[[int], Awaitable[None]] | None = None,
    **service_options: object,
) -> tuple[KISSimulator, RecorderService, SimulatedClock, list[list[int]]]:
    """Run the scheduled service for `days` windows; the day's data is in before each window ends."""
    frames = make_tr_frames([("H0ZFANC0", [CODES[i % 2]]) for i in range(40)])
    keys = app_keys(2)
    holder: dict[str, object] = {}
    connections_by_day: list[list[int]] = []
    marks = {"timelines": 0, "connections": 0}

    async def hold(purpose: str, target: int) -> None:
        sim: KISSimulator = holder["sim"]  # type: ignore[assignment]
        service: RecorderService = holder["service"]  # type: ignore[assignment]
        if purpose == "connect":
            if len(service.windows) == days:
                service.request_stop("simulated days done")
                return
            if on_connect is not None:
                await on_connect(len(service.windows))
            marks["timelines"], marks["connections"] = sim.stats.timelines_started, len(sim.connections)
        if purpose == "disconnect":
            await sim.wait_for(
                lambda: sim.stats.timelines_started >= marks["timelines"] + 2 and sim.replay_done, 15
            )
            sent = sum(len(c.sent) for c in sim.connections)
            async with asyncio.timeout(15):
                while _received(service) < sent:
                    await asyncio.sleep(0.01)
            connections_by_day.append([c.id for c in sim.connections[marks["connections"] :]])

    clock = SimulatedClock(START, hold)

    async def main() -> None:
        sim = KISSimulator(
            frames,
            speed=0,
            credentials={k.credentials.app_key: k.credentials.app_secret for k in keys},
            pingpong_interval_secs=None,
        )
        async with sim:
            options = {"master_url": sim.master_url, "codes": CODES, **service_options}
            service = make_service(
                sim, tmp_path / "out", keys, calendar=week_calendar(), clock=clock, schedule=True, **options
            )
            holder.update(sim=sim, service=service)
            await asyncio.wait_for(service.run(), 60)

    run_async(main(), timeout=90)
    return holder["sim"], holder["service"], clock, connections_by_day  # type: ignore[return-value]


def _received(service: RecorderService) -> int:
    return sum(counters.messages for counters in service.metrics.keys.values())


def test_three_session_days_through_a_holiday_and_a_late_open_make_exact_per_day_files(
    tmp_path: Path, caplog
) -> None:
    """Connect/disconnect at the planned KST times; one file and one master per day, exactly that day's."""
    caplog.set_level(logging.INFO)
    sim, service, clock, by_day = run_days(tmp_path, 3)
    out = tmp_path / "out"
    assert clock.jumps == [
        ("connect", ns(DAYS[0], "08:20")),
        ("disconnect", ns(DAYS[0], "15:50")),
        ("connect", ns(LATE, "09:20")),
        ("disconnect", ns(LATE, "16:50")),
        ("connect", ns(DAYS[2], "08:20")),
        ("disconnect", ns(DAYS[2], "15:50")),
    ]
    files = captures(out)
    assert [p.name[:12] for p in files] == [f"kis-{d:%Y%m%d}" for d in DAYS]
    conns = {c.id: c for c in sim.connections}
    for path, day, ids in zip(files, DAYS, by_day, strict=True):
        lines = capture_lines(path)
        assert lines[0]["trading_day"] == day.isoformat()
        window = service.windows[DAYS.index(day)]
        assert all(krx.kst_date(line["ts"]) == day for line in lines[1:])
        assert all(lines[0]["window"]["connect"] <= line["ts"] for line in lines[1:])
        sent = [text for i in ids for text in conns[i].sent_texts()]
        assert sorted(messages_of(path)) == sorted(sent) and len(sent) == window.messages > 40
        assert sorted(e["key"] for e in events_of(path, "open")) == [1, 2]
        assert master_snapshot_path(out, day).is_file()
    assert not master_snapshot_path(out, HOLIDAY).exists()
    assert [w.date for w in service.windows] == DAYS
    assert "Next session day 2026-11-27: connecting at 09:20, disconnecting at 16:50 KST" in caplog.text


def test_a_morning_without_a_downloadable_master_records_the_universe_with_yesterdays_and_says_so(
    tmp_path: Path, caplog
) -> None:
    """Day 2's master download fails (retried with backoff): yesterday's used, said once; day 3 normal."""
    from kis_adapter.master import master_for_codes

    caplog.set_level(logging.INFO)
    source = tmp_path / "kis" / "fo_stk_code_mts.mst.zip"
    source.parent.mkdir()
    source.write_bytes(master_for_codes(CODES))
    saved = source.read_bytes()

    async def on_connect(done: int) -> None:
        if done == 1:
            source.unlink()  # the download fails on the second morning
        elif done == 2:
            source.write_bytes(saved)

    _sim, _service, clock, _ = run_days(
        tmp_path,
        3,
        on_connect=on_connect,
        universe="front",
        codes=(),
        master_url=source.as_uri(),
        master_wait_secs=60,
    )
    out = tmp_path / "out"
    files = captures(out)
    assert [p.name[:12] for p in files] == [f"kis-{d:%Y%m%d}" for d in DAYS]
    masters = [events_of(path, "master") for path in files]
    assert [len(m) for m in masters] == [1, 1, 1]
    assert not masters[0][0].get("fallback") and not masters[2][0].get("fallback")
    fallback = masters[1][0]
    assert fallback["fallback"] is True and fallback["of_day"] == DAYS[0].isoformat()
    assert "cannot download the master" in fallback["error"]
    retries = [target for purpose, target in clock.jumps if purpose == "retry"]
    assert len(retries) >= 3 and all(ns(LATE, "09:20") < t < ns(LATE, "09:22") for t in retries)
    warned = [r.getMessage() for r in caplog.records if "could not be fetched" in r.getMessage()]
    assert warned == [
        f"Master of {LATE} could not be fetched ({fallback['error']}): recording with the master of "
        f"{DAYS[0]} (fo_stk_code_mts-20261125.mst)"
    ]
    assert master_snapshot_path(out, LATE).read_bytes() == master_snapshot_path(out, DAYS[0]).read_bytes()
    for path in files:
        assert sorted(capture_lines(path)[0]["codes"]) == sorted(CODES)
        assert {e["key"] for e in events_of(path, "open")} == {1, 2}


def _mount_tmpfs(path: Path, size: str) -> bool:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return result.returncode == 0


def _fill(path: Path) -> Path:
    """Fill the filesystem of `path` to the last byte with one file; return it."""
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as file:
        for size in (1 << 16, 1 << 10, 1):  # big steps, then down to the last byte
            try:
                while True:
                    file.write(bytes(size))
            except OSError:
                pass
    return filler


def test_a_disk_that_fills_in_the_night_costs_that_day_only_said_once(tmp_path: Path, caplog) -> None:
    """Full disk on day 2's morning: one ERROR, no connection that day; day 1 intact; day 3 normal."""
    import pytest

    out = tmp_path / "out"
    if not _mount_tmpfs(out, "8m"):
        pytest.skip(
            "cannot mount a tmpfs here (needs root): the full-disk test needs a real small filesystem"
        )
    caplog.set_level(logging.INFO)
    filler: list[Path] = []

    async def on_connect(done: int) -> None:
        if done == 1:
            filler.append(_fill(out))
        elif done == 2:
            filler.pop().unlink()

    try:
        sim, service, _clock, by_day = run_days(tmp_path, 3, on_connect=on_connect)
        files = captures(out)
        names = [p.name[:12] for p in files]
        contents = [(capture_lines(p), messages_of(p)) for p in files]
    finally:
        import subprocess

        subprocess.run(["umount", str(out)], check=False)
    assert names == [f"kis-{DAYS[0]:%Y%m%d}", f"kis-{DAYS[2]:%Y%m%d}"]
    assert sim.stats.connections == 4  # two keys on day 1 and day 3; nothing on the full day
    conns = {c.id: c for c in sim.connections}
    for (lines, messages), ids in zip(contents, by_day, strict=True):
        assert sorted(messages) == sorted(t for i in ids for t in conns[i].sent_texts())
        assert lines[-1]["event"] == "close"  # the last line is complete: the writer closed cleanly
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert (
        len(errors) == 1
        and "No space left on device" in errors[0]
        and "nothing is recorded until" in errors[0]
    )
    assert service.windows[1].messages == 0 and service.windows[1].errors
    assert service.metrics.capture_writable


def test_a_disk_that_fills_during_a_window_keeps_what_was_written_and_the_next_day_records(
    tmp_path: Path, caplog
) -> None:
    """The disk fills mid-day: one ERROR, the file reads up to the fill, no reconnect loop; day 2 normal."""
    import pytest
    from sim_helpers import build_pingpong_now

    from kis_adapter.capture import CaptureReader

    out = tmp_path / "out"
    if not _mount_tmpfs(out, "8m"):
        pytest.skip(
            "cannot mount a tmpfs here (needs root): the full-disk test needs a real small filesystem"
        )
    caplog.set_level(logging.INFO)
    state: dict[str, object] = {}

    async def on_connect(done: int) -> None:
        if done == 1:
            state["filler"].unlink()  # type: ignore[union-attr]

    frames = make_tr_frames([("H0ZFANC0", [CODES[i % 2]]) for i in range(40)])
    keys = app_keys(2)

    async def main() -> tuple[KISSimulator, RecorderService]:
        async def hold(purpose: str, target: int) -> None:
            service: RecorderService = state["service"]  # type: ignore[assignment]
            if purpose == "connect":
                if len(service.windows) == 2:
                    service.request_stop("done")
                elif service.windows:
                    await on_connect(len(service.windows))
                state["timelines"] = sim.stats.timelines_started
            if purpose == "disconnect":
                started = state["timelines"]
                await sim.wait_for(lambda: sim.replay_done and sim.stats.timelines_started >= started + 2, 15)
                while _received(service) < sum(len(c.sent) for c in sim.connections):
                    await asyncio.sleep(0.01)
                if len(service.windows) == 1:
                    service._day.writer.flush()  # type: ignore[union-attr]
                    state["before_fill"] = [t for c in sim.connections for t in c.sent_texts()]
                    state["filler"] = _fill(out)
                    while service._day is not None and service._day.write_error is None:
                        await sim.send_raw(build_pingpong_now())
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(3600)  # the failed window ends without this hold

        sim = KISSimulator(
            frames,
            speed=0,
            credentials={k.credentials.app_key: k.credentials.app_secret for k in keys},
            pingpong_interval_secs=None,
        )
        async with sim:
            service = make_service(
                sim,
                out,
                keys,
                codes=CODES,
                calendar=week_calendar(),
                clock=SimulatedClock(START, hold),
                schedule=True,
            )
            state["service"] = service
            await asyncio.wait_for(service.run(), 60)
        return sim, service

    try:
        sim, service = run_async(main(), timeout=90)
        files = captures(out)
        with CaptureReader(files[0]) as reader:
            day1 = [m.frame for m in reader]
        day2 = messages_of(files[1])
    finally:
        import subprocess

        subprocess.run(["umount", str(out)], check=False)
    assert [p.name[:12] for p in files] == [f"kis-{DAYS[0]:%Y%m%d}", f"kis-{DAYS[1]:%Y%m%d}"]
    before = state["before_fill"]
    from collections import Counter

    assert not Counter(before) - Counter(day1)  # type: ignore[arg-type]  # all flushed before the fill is kept
    assert sim.stats.connections == 4  # no reconnect while the disk stayed full
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("Capture write failed") and "No space left" in errors[0]
    later = [c for c in sim.connections if c.id > 2]
    assert sorted(day2) == sorted(t for c in later for t in c.sent_texts())
    assert service.windows[0].errors and not service.windows[1].errors
