"""The H0ZFANC0 row decoder's inlined arithmetic agrees with the reference functions in values.py."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kis_adapter.protocol.rows import decode_h0zfanc0
from kis_adapter.protocol.values import hhmmss_to_seconds
from kis_adapter.protocol.values import kst_time_to_ns

TIMES = st.integers(0, 86_399).map(lambda s: f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}")
RECEIVED = st.integers(0, 4_000_000_000 * 10**9)


@given(hhmmss=TIMES, ts_recv=RECEIVED)
def test_decode_h0zfanc0_with_any_time_dates_it_like_kst_time_to_ns(hhmmss, ts_recv):
    """ts_event of a decoded row equals the reference nearest-KST-date rule."""
    # Arrange
    record = ["A11612", hhmmss, "75000", "-100", "5", "-0.13", "311", "10"]

    # Act
    rows, bad = decode_h0zfanc0([record], ts_recv)

    # Assert
    assert bad == 0
    assert rows[0][1] == kst_time_to_ns(hhmmss_to_seconds(hhmmss), ts_recv)


@given(
    value=st.sampled_from(["nan", "inf", "-inf", "NaN", "1e999", "x", "1..0"]),
    column=st.sampled_from([2, 3, 5]),
)
def test_decode_h0zfanc0_with_non_finite_or_garbage_value_counts_the_record_bad(value, column):
    """A non-finite or non-numeric price/change/percent makes the record bad, never a value."""
    # Arrange
    record = ["A11612", "083001", "75000", "-100", "5", "-0.13", "311", "10"]
    record[column] = value

    # Act
    rows, bad = decode_h0zfanc0([record, ["A50612", "083001", "1", "0", "3", "0.00", "311", "1"]], 0)

    # Assert
    assert bad == 1
    assert [row[0] for row in rows] == ["A50612"]
