"""The recorder's pure parts: the schedule, the universe, the sharding, KST log lines."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from kis_adapter import krx
from kis_adapter.master import MasterRow
from kis_adapter.master import synthetic_row
from kis_adapter.recorder import schedule
from kis_adapter.recorder import universe
from kis_adapter.recorder.clock import SimulatedClock
from kis_adapter.recorder.logs import KSTFormatter
from kis_adapter.recorder.shards import ShardError
from kis_adapter.recorder.shards import plan_shards

TRS = ("H0ZFANC0", "H0ZFCNT0", "H0ZFASP0")


def _weekdays(start: dt.date, end: dt.date, closed: set[dt.date]) -> list[dt.date]:
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [d for d in days if d.weekday() < 5 and d not in closed]


def test_plan_for_december_skips_christmas_and_the_year_end_closure() -> None:
    """XKRX December 2026: every weekday but the 25th and the 31st, 08:20 → 15:50 KST."""
    lines = [w.line() for w in schedule.plan(krx.default_calendar(), dt.date(2026, 12, 1), 31)]
    expected = _weekdays(
        dt.date(2026, 12, 1), dt.date(2026, 12, 31), {dt.date(2026, 12, 25), dt.date(2026, 12, 31)}
    )
    assert lines == [f"{d.isoformat()} 08:20 15:50" for d in expected] and len(lines) == 21


def test_windows_follow_shifted_days_and_the_lead_and_lag() -> None:
    """Exam day and the first day of 2027 open an hour late; the window moves with them."""
    calendar = krx.default_calendar()
    assert schedule.window_for(calendar, dt.date(2026, 11, 19)).line() == "2026-11-19 09:20 16:50"
    assert schedule.window_for(calendar, dt.date(2027, 1, 4)).line() == "2027-01-04 09:20 15:50"
    assert schedule.window_for(calendar, dt.date(2026, 11, 18), 30, 0).line() == "2026-11-18 08:00 15:45"


def test_next_window_mid_session_is_today_after_it_the_next_session_day() -> None:
    """Started at 11:00 the recorder records the rest of the day; at 16:00 on Friday it waits for Monday."""
    calendar = krx.TradingCalendar.regular(dt.date(2026, 11, 1), dt.date(2026, 12, 31))
    friday = dt.date(2026, 11, 27)
    assert schedule.next_window(calendar, krx.kst_ns(friday, krx.hms("11:00"))).date == friday
    assert schedule.next_window(calendar, krx.kst_ns(friday, krx.hms("15:49:59"))).date == friday
    monday = schedule.next_window(calendar, krx.kst_ns(friday, krx.hms("15:50")))
    assert monday.line() == "2026-11-30 08:20 15:50"


def test_dry_run_prints_the_documented_lines_with_calendar_overrides(tmp_path, monkeypatch, capsys) -> None:
    """KIS_KRX_CALENDAR_FILE adds a closure and a late open; --dry-run prints them, nothing else."""
    from kis_adapter.cli import main

    overrides = tmp_path / "krx.toml"
    overrides.write_text(
        '[[closed]]\ndate = "2027-03-03"\nreason = "temporary holiday"\n\n'
        '[[late_open]]\ndate = "2027-03-04"\nshift_minutes = 60\nreason = "exam"\n'
    )
    monkeypatch.setenv("KIS_KRX_CALENDAR_FILE", str(overrides))
    try:
        code = main(["record", "--schedule", "--dry-run", "--from", "2027-03-01", "--days", "7"])
    finally:
        krx.configure(None)
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "2027-03-02 08:20 15:50",  # 03-01 is a holiday (삼일절)
        "2027-03-04 09:20 16:50",
        "2027-03-05 08:20 15:50",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dry-run"], "--dry-run needs --schedule"),
        (["--schedule", "--dry-run", "--days", "0"], "must be 1..3660"),
        (["--schedule", "--dry-run", "--from", "2027-02-30"], "not a date"),
    ],
)
def test_dry_run_usage_errors_are_one_line(argv, message, capsys) -> None:
    """Bad --dry-run arguments: exit 2, one line."""
    from kis_adapter.cli import main

    try:
        code = main(["record", *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def _row(code: str, underlying: str, year: int, month: int) -> MasterRow:
    base = synthetic_row(code)
    return MasterRow(base.product_type, code, base.std_code, base.name, "1", underlying, "x", year, month, 10)


def test_front_universe_rolls_on_the_last_trading_day_and_all_drops_expired() -> None:
    """Front month per underlying; on its last trading day (2nd Thursday) the next month is the front."""
    calendar = krx.default_calendar()
    rows = [
        _row("A11612", "005930", 2026, 12),
        _row("A11701", "005930", 2027, 1),
        _row("A50612", "000660", 2026, 12),
        _row("A50703", "000660", 2027, 3),
        _row("A13611", "000270", 2026, 11),  # expired on 2026-11-12
        _row("A13612", "000270", 2026, 12),
    ]
    before = universe.select(rows, "front", calendar, dt.date(2026, 12, 9))
    assert before.codes == ["A13612", "A50612", "A11612"] and before.expired == ["A13611"]
    on_last_day = universe.select(rows, "front", calendar, dt.date(2026, 12, 10))
    # 000270 lists no later month: its expiring contract is kept for its last day
    assert on_last_day.codes == ["A13612", "A50703", "A11701"] and on_last_day.rolled == ["A50612", "A11612"]
    every = universe.select(rows, "all", calendar, dt.date(2026, 12, 10))
    assert every.codes == ["A13612", "A50612", "A11612", "A11701", "A50703"]


def test_front_universe_keeps_an_expiring_contract_with_no_successor_listed() -> None:
    """An underlying whose next month is not listed yet keeps its expiring contract for its last day."""
    rows = [_row("A13612", "000270", 2026, 12)]
    chosen = universe.select(rows, "front", krx.default_calendar(), dt.date(2026, 12, 10))
    assert chosen.codes == ["A13612"] and chosen.rolled == []


def test_sharding_keeps_codes_whole_and_balanced_and_refuses_in_one_line() -> None:
    """105 registrations over 3 keys: 12/12/11 whole codes; 124 over 3 keys: one line with the counts."""
    codes = [f"A{i:02d}612" for i in range(10, 45)]
    plan = plan_shards(codes, TRS, 3)
    assert [len(s) for s in plan.shards] == [36, 36, 33]
    assert [plan.codes(i) for i in range(3)] == [codes[:12], codes[12:24], codes[24:]]
    assert plan == plan_shards(codes, TRS, 3)  # deterministic
    with pytest.raises(ShardError) as info:
        plan_shards([f"A{i:02d}612" for i in range(10, 52)], TRS, 3)
    assert str(info.value) == "126 registrations need 4 keys (at most 41 per key); KIS_CREDENTIALS_FILE has 3"


def test_sharding_splits_a_code_only_when_whole_codes_cannot_fit() -> None:
    """27 codes × 3 TRs = 81 ≤ 82: keys filled to 41, one code's TRs split across the boundary."""
    codes = [f"A{i:02d}612" for i in range(10, 37)]
    plan = plan_shards(codes, TRS, 2)
    assert [len(s) for s in plan.shards] == [41, 40]
    assert set(plan.codes(0)) & set(plan.codes(1)) == {codes[13]}
    assert sorted(r for s in plan.shards for r in s) == sorted((tr, c) for c in codes for tr in TRS)


def test_sharding_truncates_whole_codes_when_asked() -> None:
    """truncate=True: the first codes that fit, the rest left out (the service logs them as not recorded)."""
    codes = [f"A{i:02d}612" for i in range(10, 60)]
    plan = plan_shards(codes, TRS, 2, truncate=True)
    assert plan.registrations == 78 and plan.left_out_codes() == codes[26:]


def test_log_lines_carry_kst_on_the_service_clock() -> None:
    """The formatter writes KST whatever the host zone, on the simulated clock when one is given."""
    start = krx.kst_ns(dt.date(2026, 11, 25), krx.hms("08:20"))
    formatter = KSTFormatter(clock=SimulatedClock(start))
    record = logging.LogRecord("kis_adapter.recorder", logging.INFO, __file__, 1, "Connected", (), None)
    assert formatter.format(record).startswith("2026-11-25 08:20:0")
    assert " KST INFO kis_adapter.recorder: Connected" in formatter.format(record)
    plain = KSTFormatter().format(record)
    assert plain[:19] == krx.kst_datetime(int(record.created * 1e9)).strftime("%Y-%m-%d %H:%M:%S")
