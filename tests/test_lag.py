"""LagMeter (pure): a constant clock offset is said once and lag is measured beyond it."""

from __future__ import annotations

import pytest

from kis_adapter.lag import LagMeter

S = 1_000_000_000
REPLAY = 41_844 * S  # a capture of 08:40 KST replayed at 20:17 KST


def test_constant_offset_of_a_replay_is_said_once_and_is_not_lag() -> None:
    """Every record 11.6 h "late" by the same amount: one notice, max lag under a second."""
    # Arrange
    meter = LagMeter()

    # Act
    notices = [meter.observe(REPLAY + (n % 10) * S // 10) for n in range(1000)]

    # Assert
    assert [n for n in notices if n] == [
        "Records are stamped 11.6 h before the receive clock (a replay of a capture, or a wrong clock): "
        "lag is measured against that offset from here on"
    ]
    assert meter.take_max() == pytest.approx(0.9)
    assert meter.offset_ns == REPLAY


def test_falling_behind_beyond_the_offset_still_shows() -> None:
    """Lag that grows from the baseline is reported, offset or not."""
    # Arrange
    replay, live = LagMeter(), LagMeter()

    # Act
    for n in range(100):
        replay.observe(REPLAY + n * S // 10)  # 0.1 s later each time: a backlog building up
        live.observe(n * S // 10)

    # Assert
    assert replay.take_max() == pytest.approx(9.9) and live.take_max() == pytest.approx(9.9)
    assert live.offset_ns == 0 and replay.take_max() == 0.0  # a new window starts empty


def test_small_lags_are_never_taken_for_an_offset() -> None:
    """Under a minute, the least lag is real delay: measured as is, no notice."""
    # Arrange
    meter = LagMeter()

    # Act
    notices = [meter.observe(lag) for lag in (30 * S, 31 * S, 45 * S)]

    # Assert
    assert notices == [None, None, None] and meter.take_max() == pytest.approx(45.0)


def test_records_stamped_in_the_future_and_a_new_connection_to_another_replay() -> None:
    """A negative offset is an offset too; after a reconnect the baseline is found again, said again
    only when it moved by a minute or more."""
    # Arrange
    meter = LagMeter()

    # Act
    first = meter.observe(-2 * 3600 * S)
    meter.new_connection()
    same = meter.observe(-2 * 3600 * S + S)
    meter.new_connection()
    other = meter.observe(5 * 3600 * S)

    # Assert
    assert first is not None and "2.0 h after the receive clock" in first
    assert same is None
    assert other is not None and "5.0 h before" in other


def test_a_fast_replay_whose_offset_shrinks_record_by_record_is_said_once() -> None:
    """A replay at full speed: the least lag falls by hours over the run; one notice, not one per record."""
    # Arrange
    meter = LagMeter()

    # Act
    notices = [meter.observe(190 * 3600 * S - n * 60 * S) for n in range(500)]

    # Assert
    assert len([n for n in notices if n]) == 1 and "190.0 h before" in notices[0]
    assert meter.offset_ns == 190 * 3600 * S - 499 * 60 * S
