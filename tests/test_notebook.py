"""`kis_adapter.notebook.load_frame` on real catalogs made by `convert`, checked against ``catalog.query``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog

from kis_adapter.catalog import convert_captures
from kis_adapter.krx import KST
from kis_adapter.notebook import KINDS
from kis_adapter.notebook import CatalogNotFoundError
from kis_adapter.notebook import UnknownKindError
from kis_adapter.notebook import load_frame
from kis_adapter.protocol import H0ZFASP0
from kis_adapter.protocol import build_data_frame
from kis_adapter.storage import CatalogLocation
from kis_adapter.types import KISExpectedFill

NS = 1_000_000_000
SAMPLE_DAY = "2026-11-24"


def _kst(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, unit="ns", tz="UTC").tz_convert("Asia/Seoul")


def _value(value: object) -> float:
    """A `Price`/`Quantity` as its exact decimal value (``as_double()`` can be off: 247500.00000000003)."""
    return float(value.as_decimal()) if hasattr(value, "as_decimal") else float(value)


def _nan_or(value: float, missing: bool) -> float:
    return math.nan if missing else value


def _same(a: tuple, b: tuple) -> bool:
    """Tuples equal, NaN equal to NaN (and nothing else)."""
    return len(a) == len(b) and all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)) or x == y
        for x, y in zip(a, b, strict=True)
    )


def _assert_rows_equal(frame_rows: list[tuple], object_rows: list[tuple]) -> None:
    assert len(frame_rows) == len(object_rows)
    bad = [(f, o) for f, o in zip(sorted(frame_rows, key=repr), sorted(object_rows, key=repr), strict=True)]
    mismatches = [(f, o) for f, o in bad if not _same(f, o)]
    assert not mismatches, mismatches[:3]


def _frame_rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    rows = []
    for ts_init, values in zip(frame.index, frame[columns].itertuples(index=False, name=None), strict=True):
        rows.append((ts_init, *values))
    return rows


# -- EXACT VALUES --------------------------------------------------------------------------------


def test_load_frame_expected_fills_equal_catalog_query_objects_with_nan_for_no_price(sample_catalog: Path):
    """Every expected fill equals its object; no expected price is NaN price/change/pct, never -100 %."""
    # Arrange
    objects = [c.data for c in ParquetDataCatalog(str(sample_catalog)).query(KISExpectedFill)]
    expected = [
        (
            _kst(o.ts_init),
            o.instrument_id.value,
            _kst(o.ts_event),
            _nan_or(_value(o.price), _value(o.price) == 0.0),
            _nan_or(o.change, _value(o.price) == 0.0),
            o.sign,
            _nan_or(o.change_pct, _value(o.price) == 0.0),
            o.phase_code,
            o.quantity,
        )
        for o in objects
    ]

    # Act
    frame = load_frame(sample_catalog, "expected_fills")

    # Assert
    columns = ["instrument_id", "ts_event", "price", "change", "sign", "change_pct", "phase_code", "quantity"]
    _assert_rows_equal(_frame_rows(frame, columns), expected)
    no_price = [o for o in objects if _value(o.price) == 0.0]
    assert no_price and all(o.change_pct == -100.0 for o in no_price)  # what KIS sends for "no price"
    assert frame["price"].isna().sum() == len(no_price)
    assert frame.loc[frame["price"].isna(), ["change", "change_pct"]].isna().all().all()
    assert not (frame["change_pct"] == -100.0).any()


def test_load_frame_trades_equal_catalog_query_objects(sample_catalog: Path):
    """Price, size (their decimal values), aggressor name, trade id and both timestamps of every TradeTick."""
    # Arrange
    objects = ParquetDataCatalog(str(sample_catalog)).query(TradeTick)
    expected = [
        (
            _kst(t.ts_init),
            t.instrument_id.value,
            _kst(t.ts_event),
            _value(t.price),
            _value(t.size),
            t.aggressor_side.name,
            t.trade_id.value,
        )
        for t in objects
    ]

    # Act
    frame = load_frame(sample_catalog, "trades")

    # Assert
    columns = ["instrument_id", "ts_event", "price", "size", "aggressor_side", "trade_id"]
    _assert_rows_equal(_frame_rows(frame, columns), expected)
    assert set(frame["aggressor_side"]) == {"BUYER", "SELLER", "NO_AGGRESSOR"}
    assert frame["price"].dtype == np.float64 and frame["size"].dtype == np.float64


def _book_values(d: OrderBookDepth10) -> tuple:
    bids, asks = d.bids, d.asks
    prices = [_nan_or(_value(o.price), _value(o.price) == 0.0) for o in (*bids, *asks)]
    sizes = [_value(o.size) for o in (*bids, *asks)]
    return (
        _kst(d.ts_init),
        d.instrument_id.value,
        _kst(d.ts_event),
        *prices,
        *sizes,
        *d.bid_counts,
        *d.ask_counts,
    )


def _book_columns() -> list[str]:
    return [
        "instrument_id",
        "ts_event",
        *(f"{s}_{w}_{i}" for w in ("px", "sz", "ct") for s in ("bid", "ask") for i in range(1, 11)),
    ]


def test_load_frame_book_equals_catalog_query_objects_level_by_level(sample_catalog: Path):
    """bid_px_1..10, ask_px_1..10, sizes and counts equal every OrderBookDepth10 of the catalog."""
    # Arrange
    objects = ParquetDataCatalog(str(sample_catalog)).query(OrderBookDepth10)

    # Act
    frame = load_frame(sample_catalog, "book")

    # Assert
    assert objects
    _assert_rows_equal(_frame_rows(frame, _book_columns()), [_book_values(d) for d in objects])
    assert (frame["bid_px_1"] < frame["ask_px_1"]).all()
    assert (frame["bid_px_1"] > frame["bid_px_10"]).all()


def test_load_frame_quotes_equal_catalog_query_objects(sample_catalog: Path):
    """Level-1 quotes: bid/ask price and size of every QuoteTick."""
    # Arrange
    objects = ParquetDataCatalog(str(sample_catalog)).query(QuoteTick)
    expected = [
        (
            _kst(q.ts_init),
            q.instrument_id.value,
            _kst(q.ts_event),
            _value(q.bid_price),
            _value(q.ask_price),
            _value(q.bid_size),
            _value(q.ask_size),
        )
        for q in objects
    ]

    # Act
    frame = load_frame(sample_catalog, "quotes")

    # Assert
    columns = ["instrument_id", "ts_event", "bid_price", "ask_price", "bid_size", "ask_size"]
    _assert_rows_equal(_frame_rows(frame, columns), expected)


def _book_fields(code: str, hhmmss: str, bids: list[int], asks: list[int]) -> list[str]:
    pad = lambda values: [*values, *[0] * (10 - len(values))]  # noqa: E731
    sizes = lambda values: [5 if v else 0 for v in pad(values)]  # noqa: E731
    counts = lambda values: [2 if v else 0 for v in pad(values)]  # noqa: E731
    values = [*pad(asks), *pad(bids), *counts(asks), *counts(bids), *sizes(asks), *sizes(bids)]
    return [code, hhmmss, *map(str, values), "0", "0", "0", "0", "0", "0"]


def test_load_frame_book_with_empty_levels_gives_nan_prices_zero_sizes(capture_factory, tmp_path: Path):
    """A book with 3 bid levels: bid_px_4..10 are NaN (the objects hold null orders, price 0)."""
    # Arrange: 10:00:00 KST on a session day, continuous trading (no call)
    ts = int(pd.Timestamp(f"{SAMPLE_DAY} 10:00:00.005", tz="Asia/Seoul").value)
    asks = [98_700 + 100 * i for i in range(10)]
    frame_text = build_data_frame(
        H0ZFASP0, [_book_fields("A11612", "100000", [98_600, 98_500, 98_400], asks)]
    )
    capture = capture_factory([(ts, frame_text)])
    catalog = tmp_path / "catalog"
    convert_captures([capture], catalog)
    (depth,) = ParquetDataCatalog(str(catalog)).query(OrderBookDepth10)

    # Act
    frame = load_frame(catalog, "book")

    # Assert
    assert [_value(o.price) for o in depth.bids[3:]] == [0.0] * 7  # null orders in the object
    _assert_rows_equal(_frame_rows(frame, _book_columns()), [_book_values(depth)])
    row = frame.iloc[0]
    assert [row[f"bid_px_{i}"] for i in (1, 2, 3)] == [98_600.0, 98_500.0, 98_400.0]
    assert all(math.isnan(row[f"bid_px_{i}"]) for i in range(4, 11))
    assert [row[f"bid_sz_{i}"] for i in range(4, 11)] == [0.0] * 7
    assert [row[f"bid_ct_{i}"] for i in range(4, 11)] == [0] * 7
    assert row["ask_px_10"] == 99_600.0


# -- TIME, FILTERS, ORDER ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_load_frame_timestamps_are_kst_and_rows_in_receive_order(sample_catalog: Path, kind: str):
    """Index ts_init and column ts_event are tz-aware Asia/Seoul; the index never goes back."""
    # Act
    frame = load_frame(sample_catalog, kind)

    # Assert
    assert len(frame) > 0
    assert str(frame.index.tz) == "Asia/Seoul" and frame.index.name == "ts_init"
    assert str(frame["ts_event"].dt.tz) == "Asia/Seoul"
    assert frame.index.is_monotonic_increasing
    assert set(frame.index.date) == {pd.Timestamp(SAMPLE_DAY).date()}  # the KST day, not the UTC one
    if kind == "expected_fills":
        assert frame["ts_event"].min() == pd.Timestamp(f"{SAMPLE_DAY} 08:30:00", tz="Asia/Seoul")
    if kind == "trades":  # the opening print, stamped 08:45:00 KST (23:45 UTC the day before)
        assert frame["ts_event"].min() == pd.Timestamp(f"{SAMPLE_DAY} 08:45:00", tz="Asia/Seoul")


def test_load_frame_instrument_filter_takes_ids_codes_and_instrument_ids(sample_catalog: Path):
    """``"A11612.KRX"``, ``"A11612"`` and `InstrumentId` select the same rows; others are left out."""
    # Arrange
    everything = load_frame(sample_catalog, "trades")

    # Act
    by_id = load_frame(sample_catalog, "trades", ["A11612.KRX", "A50612.KRX"])
    by_code = load_frame(sample_catalog, "trades", ["A11612", "A50612"])
    by_object = load_frame(sample_catalog, "trades", [InstrumentId.from_str("A11612.KRX"), "A50612"])
    single = load_frame(sample_catalog, "trades", "A11612")

    # Assert
    pd.testing.assert_frame_equal(by_id, by_code)
    pd.testing.assert_frame_equal(by_id, by_object)
    assert set(by_id["instrument_id"]) == {"A11612.KRX", "A50612.KRX"}
    assert len(by_id) == everything["instrument_id"].isin(["A11612.KRX", "A50612.KRX"]).sum()
    assert set(single["instrument_id"]) == {"A11612.KRX"}


def test_load_frame_time_bounds_equal_catalog_query_bounds(sample_catalog: Path):
    """start/end bound ts_init inclusively, exactly as catalog.query(start=, end=) does."""
    # Arrange: bounds that fall exactly on two trades' ts_init
    objects = ParquetDataCatalog(str(sample_catalog)).query(TradeTick, identifiers=["A11612.KRX"])
    start, end = objects[100].ts_init, objects[400].ts_init
    queried = ParquetDataCatalog(str(sample_catalog)).query(
        TradeTick, identifiers=["A11612.KRX"], start=start, end=end
    )

    # Act
    by_ns = load_frame(sample_catalog, "trades", ["A11612"], start=start, end=end)
    by_time = load_frame(sample_catalog, "trades", ["A11612"], start=_kst(start), end=_kst(end))

    # Assert
    assert len(queried) == 301
    assert [t.trade_id.value for t in queried] == list(by_ns["trade_id"])
    pd.testing.assert_frame_equal(by_ns, by_time)


def test_load_frame_naive_bounds_are_kst(sample_catalog: Path):
    """``start="2026-11-24 15:35"`` is 15:35 KST: the closing call's expected fills, not the pre-open's."""
    # Act
    frame = load_frame(
        sample_catalog, "expected_fills", start=f"{SAMPLE_DAY} 15:35", end=f"{SAMPLE_DAY} 15:46"
    )
    aware = load_frame(
        sample_catalog,
        "expected_fills",
        start=pd.Timestamp(f"{SAMPLE_DAY} 06:35", tz="UTC"),
        end=pd.Timestamp(f"{SAMPLE_DAY} 15:46", tz=KST),
    )

    # Assert
    assert len(frame) > 0
    assert set(frame["phase_code"]) == {"121", "129"}  # the closing call's codes only
    pd.testing.assert_frame_equal(frame, aware)


# -- STORAGE, EMPTY, ERRORS ----------------------------------------------------------------------


def test_load_frame_reads_a_file_uri_like_a_path(sample_catalog: Path):
    """``file:///…`` is the same catalog as its path."""
    # Act
    by_uri = load_frame(sample_catalog.as_uri(), "quotes")

    # Assert
    pd.testing.assert_frame_equal(by_uri, load_frame(str(sample_catalog), "quotes"))


def test_load_frame_reads_a_catalog_on_s3(sample_catalog: Path, bucket: str):
    """A catalog converted to s3:// (a real local S3 server) loads as the local one does."""
    # Arrange
    from kis_adapter.commands.demo import sample_captures

    uri = f"s3://{bucket}/cat"
    convert_captures(sample_captures(), CatalogLocation.parse(uri))

    # Act
    remote = load_frame(uri, "book", ["A11612"])

    # Assert
    assert len(remote) > 0
    pd.testing.assert_frame_equal(remote, load_frame(sample_catalog, "book", ["A11612"]))


@pytest.mark.parametrize("kind", list(KINDS))
def test_load_frame_with_nothing_matching_is_empty_with_the_same_columns(sample_catalog: Path, kind: str):
    """An instrument not in the catalog gives zero rows, with the columns and dtypes of a full load."""
    # Act
    empty = load_frame(sample_catalog, kind, ["NOPE.KRX"])
    full = load_frame(sample_catalog, kind, ["A11612"])

    # Assert
    assert len(empty) == 0
    assert list(empty.columns) == list(full.columns)
    assert list(empty.dtypes.astype(str)) == list(full.dtypes.astype(str))
    assert str(empty.index.tz) == "Asia/Seoul"


def test_load_frame_with_an_unknown_kind_is_a_clear_error(sample_catalog: Path):
    """An unknown kind is a ValueError naming the four kinds (before any file is touched)."""
    # Act / Assert
    with pytest.raises(
        UnknownKindError, match=r"unknown kind 'bars'.*'expected_fills', 'trades', 'book', 'quotes'"
    ):
        load_frame(sample_catalog, "bars")
    with pytest.raises(ValueError):
        load_frame(tmp_missing := sample_catalog / "nowhere", "trade")
    assert not tmp_missing.exists()


def test_load_frame_with_a_missing_catalog_is_a_clear_error(tmp_path: Path):
    """No directory at the path: CatalogNotFoundError (a FileNotFoundError) naming it."""
    # Act / Assert
    missing = tmp_path / "no-such-catalog"
    with pytest.raises(CatalogNotFoundError, match=f"no catalog at {missing}"):
        load_frame(missing, "trades")
    with pytest.raises(FileNotFoundError):
        load_frame(missing.as_uri(), "expected_fills")


def test_load_frame_with_a_bad_time_is_a_clear_error(sample_catalog: Path):
    """A start that is not a time is one ConfigError line, not a pandas traceback."""
    from kis_adapter.errors import ConfigError

    with pytest.raises(ConfigError, match="start='yesterday-ish' is not a time"):
        load_frame(sample_catalog, "trades", start="yesterday-ish")


def test_load_frame_is_exported_by_the_package(sample_catalog: Path):
    """``from kis_adapter import load_frame`` is the notebook entry point."""
    import kis_adapter

    assert kis_adapter.load_frame is load_frame
    assert "load_frame" in kis_adapter.__all__
