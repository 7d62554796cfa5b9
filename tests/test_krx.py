"""
The KRX module: KST time, the tick ladder, session windows (calendar-aware, late opens, overrides,
the last trading day), contract expiries, and the one 41-registration cap every component uses.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from kis_adapter import krx
from kis_adapter.krx import CalendarError
from kis_adapter.krx import TradingCalendar
from kis_adapter.krx import default_calendar
from kis_adapter.krx import hms
from kis_adapter.krx import is_on_tick
from kis_adapter.krx import kst_clock
from kis_adapter.krx import kst_date
from kis_adapter.krx import kst_datetime
from kis_adapter.krx import kst_day
from kis_adapter.krx import kst_ns
from kis_adapter.krx import kst_seconds
from kis_adapter.krx import kst_time_to_ns
from kis_adapter.krx import load_overrides
from kis_adapter.krx import parse_overrides
from kis_adapter.krx import round_to_tick
from kis_adapter.krx import tick_size

KST = dt.timezone(dt.timedelta(hours=9))
PACKAGE = Path(krx.__file__).parent


def kst(text: str) -> int:
    """KST wall time → UTC ns, independently of the code under test."""
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=KST)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def seconds(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 3600 + int(m) * 60


# -- KST TIME ------------------------------------------------------------------------------------


def test_kst_conversions_with_utc_instants_give_the_korean_date_and_clock():
    """00:30 KST is 15:30 UTC the day before: the KST date, seconds, clock and datetime say so."""
    # Arrange
    ts = kst("2026-07-09 00:30:05.250")

    # Act / Assert
    assert ts == int(dt.datetime(2026, 7, 8, 15, 30, 5, 250_000, tzinfo=dt.UTC).timestamp() * 1e6) * 1000
    assert kst_date(ts) == dt.date(2026, 7, 9)
    assert kst_day(ts) == (dt.date(2026, 7, 9) - dt.date(1970, 1, 1)).days
    assert kst_seconds(ts) == 30 * 60 + 5
    assert kst_clock(ts) == "00:30:05"
    assert kst_datetime(ts) == dt.datetime(2026, 7, 9, 0, 30, 5, 250_000, tzinfo=KST)
    assert kst_ns(dt.date(2026, 7, 9), 30 * 60 + 5) == kst("2026-07-09 00:30:05")


@pytest.mark.parametrize(
    ("hhmmss", "received", "expected"),
    [
        ("091639", "2026-07-09 09:16:40", "2026-07-09 09:16:39"),
        ("235959", "2026-07-10 00:00:01", "2026-07-09 23:59:59"),  # just before midnight, received after
        ("000001", "2026-07-09 23:59:59", "2026-07-10 00:00:01"),  # a clock slightly behind the exchange
        ("084500", "2026-07-09 20:44:59", "2026-07-09 08:45:00"),  # 11h59m59s later: still the same day
        ("084500", "2026-07-09 20:45:01", "2026-07-10 08:45:00"),  # more than 12 h: the nearer next day
    ],
)
def test_kst_time_to_ns_takes_the_date_nearest_the_receive_time(hhmmss, received, expected):
    """A frame's HHMMSS is dated on the KST date that puts it nearest to its receive time."""
    # Arrange
    seconds_of_day = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:])

    # Act
    ts = kst_time_to_ns(seconds_of_day, kst(received))

    # Assert
    assert ts == kst(expected)


@pytest.mark.parametrize(("text", "value"), [("08:45", 31_500), ("08:45:30", 31_530), ("154500", 56_700)])
def test_hms_with_valid_times_gives_seconds(text, value):
    """HH:MM, HH:MM:SS and HHMMSS are accepted."""
    assert hms(text) == value


@pytest.mark.parametrize("text", ["8:45", "24:00", "08:60", "08:45:61", "noon", "", "０８:４５"])
def test_hms_with_bad_times_raises_value_error_naming_it(text):
    """Anything else is a ValueError naming the text, never a guess."""
    with pytest.raises(ValueError, match="not a time"):
        hms(text)


# -- TICK LADDER ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (1, 1),
        (1_999, 1),
        (2_000, 5),
        (4_995, 5),
        (5_000, 10),
        (19_990, 10),
        (20_000, 50),
        (49_950, 50),
        (50_000, 100),
        (80_000, 100),
        (199_900, 100),
        (200_000, 500),
        (250_000, 500),
        (499_500, 500),
        (500_000, 1_000),
        (1_234_000, 1_000),
    ],
)
def test_tick_size_follows_the_krx_ladder_at_each_bound(price, tick):
    """<2,000: 1 · <5,000: 5 · <20,000: 10 · <50,000: 50 · <200,000: 100 · <500,000: 500 · else 1,000."""
    assert tick_size(price) == tick


@pytest.mark.parametrize(
    ("price", "on_tick"),
    [
        (80_000, True),
        (80_050, False),
        (250_500, True),
        (250_250, False),
        (1_999, True),
        (0, False),
        (-100, False),
    ],
)
def test_is_on_tick_says_whether_a_price_is_a_valid_krx_price(price, on_tick):
    """A valid price is a positive multiple of the tick at its own level."""
    assert is_on_tick(price) is on_tick


@pytest.mark.parametrize(
    ("price", "down", "up"),
    [(80_050, 80_000, 80_100), (80_000, 80_000, 80_000), (4_999, 4_995, 5_000), (199_950, 199_900, 200_000)],
)
def test_round_to_tick_gives_the_nearest_valid_price_below_or_above(price, down, up):
    """Rounding lands on the ladder, across a bound too (4,999 → 5,000, a multiple of both ticks)."""
    assert (round_to_tick(price), round_to_tick(price, up=True)) == (down, up)
    assert is_on_tick(round_to_tick(price)) and is_on_tick(round_to_tick(price, up=True))


# -- SESSIONS ------------------------------------------------------------------------------------


def calls(calendar: TradingCalendar, date: str, *, last_trading_day: bool = False) -> tuple[int, ...]:
    times = calendar.session_times(dt.date.fromisoformat(date), last_trading_day=last_trading_day)
    return (times.pre_open_call, times.open, times.closing_call, times.close)


REGULAR = tuple(seconds(t) for t in ("08:30", "08:45", "15:35", "15:45"))
HOUR_LATE = tuple(seconds(t) for t in ("09:30", "09:45", "16:35", "16:45"))


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2026-07-09", REGULAR),
        ("2025-11-13", HOUR_LATE),  # the college entrance exam: the whole day an hour later
        ("2026-11-19", HOUR_LATE),
        ("2026-01-02", (*HOUR_LATE[:2], *REGULAR[2:])),  # the year's first session opens late (XKRX)
    ],
)
def test_session_times_on_the_maintained_calendar_include_late_open_days(date, expected):
    """Call windows per day from XKRX plus the bundled exam days."""
    # Arrange
    calendar = default_calendar()

    # Act / Assert
    assert calls(calendar, date) == expected
    assert calendar.session_times(dt.date.fromisoformat(date)).shifted is (expected != REGULAR)


def test_session_times_on_a_last_trading_day_end_at_1520_after_a_call_from_1510():
    """An expiring contract's day: closing call 15:10-15:20; shifted with the day when it is late."""
    # Arrange
    calendar = default_calendar()

    # Act / Assert
    assert calls(calendar, "2026-07-09", last_trading_day=True) == (
        *REGULAR[:2],
        seconds("15:10"),
        seconds("15:20"),
    )
    assert calls(calendar, "2026-11-19", last_trading_day=True)[2:] == (seconds("16:10"), seconds("16:20"))


@pytest.mark.parametrize(
    ("moment", "in_call"),
    [
        ("2026-07-09 08:29:59.999", False),
        ("2026-07-09 08:30:00", True),
        ("2026-07-09 08:44:59.999", True),
        ("2026-07-09 08:45:00", False),
        ("2026-07-09 15:34:59.999", False),
        ("2026-07-09 15:35:00", True),
        ("2026-07-09 15:44:59.999", True),
        ("2026-07-09 15:45:00", False),
        ("2026-11-19 08:40:00", False),
        ("2026-11-19 09:40:00", True),
        ("2026-11-19 16:40:00", True),
    ],
)
def test_in_call_with_utc_instants_uses_the_windows_of_the_kst_day(moment, in_call):
    """``[start, end)`` windows, to the nanosecond, of the KST day of the instant."""
    assert default_calendar().in_call(kst(moment)) is in_call


@pytest.mark.parametrize(
    ("date", "is_session"),
    [
        ("2026-07-09", True),
        ("2026-07-11", False),  # Saturday
        ("2026-01-01", False),  # New Year
        ("2026-02-17", False),  # Seollal
        ("2026-09-24", False),  # Chuseok
        ("2026-12-31", False),  # the year-end closure
        ("2025-10-10", True),
    ],
)
def test_is_session_on_the_maintained_calendar_knows_krx_holidays(date, is_session):
    """Holidays and the year-end closure are not sessions; weekdays otherwise are."""
    assert default_calendar().is_session(dt.date.fromisoformat(date)) is is_session


def test_calendar_overrides_close_shift_and_open_days_on_top_of_the_calendar():
    """A closure, a late open and an extra session from the TOML overrides change the days they name."""
    # Arrange
    overrides = parse_overrides(
        """
        [[closed]]
        date = "2026-07-09"
        reason = "temporary holiday"

        [[late_open]]
        date = "2026-07-10"
        open_minutes = 30

        [[session]]
        date = "2026-07-11"
        """
    )
    base = TradingCalendar.regular(dt.date(2026, 1, 1), dt.date(2026, 12, 31))

    # Act
    calendar = TradingCalendar(base._sessions, base.first, base.last, overrides)

    # Assert
    assert not calendar.is_session(dt.date(2026, 7, 9))
    assert calendar.is_session(dt.date(2026, 7, 11))  # a Saturday KRX trades
    assert calls(calendar, "2026-07-10") == (seconds("09:00"), seconds("09:15"), *REGULAR[2:])
    assert calendar.next_session(dt.date(2026, 7, 8)) == dt.date(2026, 7, 10)
    assert calendar.previous_session(dt.date(2026, 7, 10)) == dt.date(2026, 7, 8)


def test_default_calendar_with_overrides_file_applies_it_to_every_user(tmp_path):
    """configure(file) (KIS_KRX_CALENDAR_FILE) reaches default_calendar(), the one every component asks."""
    # Arrange
    path = tmp_path / "krx.toml"
    path.write_text('[[late_open]]\ndate = "2026-07-09"\nshift_minutes = 60\nreason = "test"\n')

    # Act
    krx.configure(path)
    try:
        shifted = calls(default_calendar(), "2026-07-09")
        in_call = default_calendar().in_call(kst("2026-07-09 09:40:00"))
    finally:
        krx.configure(None)

    # Assert
    assert shifted == HOUR_LATE
    assert in_call
    assert calls(default_calendar(), "2026-07-09") == REGULAR  # and gone again without the file


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[closed]\n", "not valid TOML"),
        ('[[holiday]]\ndate = "2026-07-09"\n', "unknown table 'holiday'"),
        ('[[closed]]\ndate = "09/07/2026"\n', "closed[0]: date must be YYYY-MM-DD"),
        ('[[late_open]]\ndate = "2026-07-09"\n', "late_open[0]: give shift_minutes"),
        ('[[late_open]]\ndate = "2026-07-09"\nshift_minutes = "60"\n', "shift_minutes must be whole minutes"),
        ('[[late_open]]\ndate = "2026-07-09"\nopen_minutes = 900\n', "open_minutes must be whole minutes"),
        ('closed = "2026-07-09"\n', "closed must be an array of tables"),
    ],
)
def test_calendar_overrides_with_bad_content_raise_one_line_naming_the_entry(text, needle):
    """A bad overrides file is one CalendarError line naming the file and the entry."""
    with pytest.raises(CalendarError, match=r"krx\.toml") as info:
        parse_overrides(text, "krx.toml")
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_calendar_overrides_file_missing_raises_one_line(tmp_path):
    """A missing file: one line naming it."""
    with pytest.raises(CalendarError, match=r"cannot read calendar overrides .*nope\.toml"):
        load_overrides(tmp_path / "nope.toml")


# -- LAST TRADING DAYS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2026, 7, "2026-07-09"),
        (2026, 10, "2026-10-08"),
        (2026, 12, "2026-12-10"),
        (2025, 10, "2025-10-02"),  # 2nd Thursday 10-09 is Hangul Day, inside the Chuseok closure
    ],
)
def test_last_trading_day_is_the_second_thursday_moved_before_a_holiday(year, month, expected):
    """The 2nd Thursday of the contract month, or the previous KRX session when that is closed."""
    assert default_calendar().last_trading_day(year, month) == (dt.date.fromisoformat(expected), True)


def test_last_trading_day_beyond_the_calendar_is_the_unadjusted_second_thursday_flagged_unknown():
    """Past the calendar's range the 2nd Thursday is returned with known=False (the caller warns)."""
    # Arrange
    calendar = default_calendar()

    # Act
    date, known = calendar.last_trading_day(calendar.last.year + 5, 6)

    # Assert
    assert (date.weekday(), 8 <= date.day <= 14, date.month) == (3, True, 6)
    assert known is False


def test_last_trading_day_with_override_closing_the_second_thursday_moves_it_earlier():
    """A closure the calendar does not know yet (an overrides file) moves the last trading day too."""
    # Arrange
    base = TradingCalendar.regular(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    closed = TradingCalendar(
        base._sessions, base.first, base.last, parse_overrides('[[closed]]\ndate = "2026-07-09"\n')
    )

    # Act / Assert
    assert closed.last_trading_day(2026, 7) == (dt.date(2026, 7, 8), True)


# -- THE REGISTRATION CAP ------------------------------------------------------------------------


def test_registration_cap_is_41_and_defined_only_in_krx():
    """No module but krx.py writes the number 41 in code: every cap is `krx.MAX_REGISTRATIONS`."""
    # Arrange
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "krx.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [
            f"{path.relative_to(PACKAGE)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value == 41
        ]

    # Act / Assert
    assert krx.MAX_REGISTRATIONS == 41
    assert offenders == []


def test_registration_cap_of_every_component_is_the_krx_constant():
    """Session, simulator, record and the multi-key planner use the one constant (patched, they follow)."""
    # Arrange
    from kis_adapter.constants import MAX_REGISTRATIONS as constants_cap
    from kis_adapter.recorder import shards
    from kis_adapter.session import SessionConfig
    from kis_adapter.simulator import KISSimulator

    # Act
    session_cap = SessionConfig(ws_url="ws://127.0.0.1:1", rest_url="http://127.0.0.1:1").max_registrations
    simulator_cap = KISSimulator([]).max_registrations

    # Assert
    assert session_cap == simulator_cap == constants_cap == shards.MAX_PER_KEY == krx.MAX_REGISTRATIONS


def test_convert_with_calendar_overrides_file_drops_books_of_the_shifted_call(
    tmp_path, monkeypatch, capture_factory
):
    """``KIS_KRX_CALENDAR_FILE`` reaches `convert` as it reaches the live client: a late open moves the
    call whose books are never written (08:35 is trading then; 09:35 is in the call)."""
    # Arrange
    from feed_frames import book_fields
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from kis_adapter.cli import main
    from kis_adapter.protocol import build_data_frame

    overrides = tmp_path / "krx.toml"
    overrides.write_text('[[late_open]]\ndate = "2026-07-09"\nshift_minutes = 60\n')
    monkeypatch.setenv("KIS_KRX_CALENDAR_FILE", str(overrides))
    monkeypatch.chdir(tmp_path)
    times = ("08:35:00", "09:35:00", "10:00:00")
    capture = capture_factory(
        [
            (kst(f"2026-07-09 {t}") + 10**9, build_data_frame("H0ZFASP0", [book_fields(t.replace(":", ""))]))
            for t in times
        ]
    )

    # Act
    try:
        code = main(["convert", str(capture), "--catalog", str(tmp_path / "catalog"), "--no-progress"])
    finally:
        krx.configure(None)  # the process-wide calendar back to the maintained one

    # Assert
    depths = ParquetDataCatalog(str(tmp_path / "catalog")).order_book_depth10()
    assert code == 0
    assert [d.ts_event for d in depths] == [kst("2026-07-09 08:35:00"), kst("2026-07-09 10:00:00")]
