"""Capture → catalog (convert_captures) → ParquetDataCatalog.query / BacktestNode round trips."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import BacktestDataConfig
from nautilus_trader.config import BacktestEngineConfig
from nautilus_trader.config import BacktestRunConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog
from nautilus_trader.trading.strategy import Strategy

from kis_adapter.capture import CaptureReader
from kis_adapter.capture import CaptureWriter
from kis_adapter.catalog import convert_captures
from kis_adapter.errors import CaptureError
from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import build_data_frame
from kis_adapter.types import KISExpectedFill

NS = 1_000_000_000
DAY_NS = 86_400 * NS
KST_OFFSET_NS = 9 * 3_600 * NS
DAY_1 = 1_764_027_000 * NS  # 2025-11-25 08:30:00 KST (opening call)
DAY_2 = DAY_1 + DAY_NS  # 2025-11-26 08:30:00 KST
CODES = ("A11612", "A50612", "111W12")
FILL_DIR = Path("data") / "custom_kis_expected_fill"

PINGPONG = '{"header":{"tr_id":"PINGPONG","datetime":"20251125083005"}}'
ACK = (
    '{"header":{"tr_id":"H0ZFANC0","tr_key":"A11612","encrypt":"N"},'
    '"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS"}}'
)


def _hhmmss(ts: int) -> str:
    seconds = (ts + KST_OFFSET_NS) % DAY_NS // NS
    return f"{seconds // 3600:02d}{seconds % 3600 // 60:02d}{seconds % 60:02d}"


def _record(code: str, ts: int, i: int, width: int = 8) -> list[str]:
    price = 0 if i % 11 == 0 else 75000 + 50 * (i % 17)  # some "no expected price" records
    fields = [
        code,
        _hhmmss(ts),
        str(price),
        str(price - 75000),
        "2",
        f"{(price - 75000) / 750:.2f}",
        "311",
        str(i),
    ]
    return fields[:width]


def day_messages(start: int, n: int) -> list[tuple[int, str]]:
    """`n` data messages 250 ms apart (single, multi-record and legacy 7-field), plus control and junk."""
    out = []
    for i in range(n):
        ts = start + i * 250_000_000 + 1_234
        shape = i % 4
        if shape == 0:
            records = [_record(CODES[i % 3], ts, i)]
        elif shape == 1:
            records = [_record(code, ts, i) for code in CODES]
        elif shape == 2:
            records = [_record(CODES[0], ts, i), _record(CODES[2], ts, i)]
        else:
            records = [_record(CODES[1], ts, i, width=7)]
        out.append((ts, build_data_frame("H0ZFANC0", records)))
    out.insert(1, (start + 1, ACK))
    out.insert(5, (start + 5, PINGPONG))
    out.insert(9, (start + 9, "1|H0ZFANC0|001|U2FsdGVkX1+abc=="))
    out.insert(12, (start + 12, "0|H0ZFANC0|003|" + "^".join(["A11612"] * 20)))
    bad = build_data_frame(
        "H0ZFANC0", [_record(CODES[0], start, 1), ["A50612", "08300x", "1", "1", "2", "1", "311", "1"]]
    )
    out.insert(15, (start + 15, bad))
    return out


def write_capture(directory: Path, messages: list[tuple[int, str]], *, compress: bool = True) -> list[Path]:
    with CaptureWriter(directory, compress=compress) as writer:
        for ts, frame in messages:
            writer.write_message(ts, frame)
    return writer.paths


def parsed(paths: list[Path]) -> list[KISExpectedFill]:
    """The oracle: MessageParser over the captures' messages, in file order."""
    parser = MessageParser()
    out = []
    for path in paths:
        with CaptureReader(path) as reader:
            for message in reader:
                out.extend(parser.parse(message.ts, message.frame))
    return out


def queried(catalog_path: Path, instrument_id: str | None = None) -> list[KISExpectedFill]:
    catalog = ParquetDataCatalog(str(catalog_path))
    identifiers = None if instrument_id is None else [instrument_id]
    return [item.data for item in catalog.query(KISExpectedFill, identifiers=identifiers)]


def catalog_files(catalog_path: Path) -> dict[str, list[str]]:
    """``{instrument directory: [parquet file names]}`` (sorted)."""
    root = catalog_path / FILL_DIR
    if not root.exists():
        return {}
    return {d.name: sorted(f.name for f in d.glob("*.parquet")) for d in sorted(root.iterdir())}


def catalog_rows(catalog_path: Path) -> list[tuple]:
    rows = []
    for file in sorted((catalog_path / FILL_DIR).glob("*/*.parquet")):
        table = pq.read_table(file)
        rows.extend(zip(*(table.column(name).to_pylist() for name in table.column_names), strict=True))
    return rows


def by_ts_init(items: list[KISExpectedFill]) -> list[KISExpectedFill]:
    return sorted(items, key=lambda item: item.ts_init)  # stable: file order among equal ts_init


@pytest.fixture(scope="module")
def two_day_captures(tmp_path_factory) -> list[Path]:
    """Two KST trading days of data: the writer rotates into one capture per day."""
    directory = tmp_path_factory.mktemp("captures")
    paths = write_capture(directory, day_messages(DAY_1, 120) + day_messages(DAY_2, 80))
    assert len(paths) == 2
    return paths


@pytest.fixture(scope="module")
def converted(two_day_captures, tmp_path_factory) -> tuple[Path, object]:
    catalog_path = tmp_path_factory.mktemp("catalog")
    report = convert_captures(two_day_captures, catalog_path)
    return catalog_path, report


# -- ROUND TRIP ----------------------------------------------------------------------------------


def test_convert_then_query_with_two_day_capture_returns_parser_objects(two_day_captures, converted):
    """catalog.query(KISExpectedFill) returns exactly MessageParser's objects, timestamps included."""
    # Arrange
    catalog_path, _ = converted
    expected = parsed(two_day_captures)

    # Act
    result = queried(catalog_path)

    # Assert
    assert len(expected) == 7 * (120 + 80) // 4 + 2  # sanity: 7 records per 4 frames, +1 good record a day
    assert Counter(result) == Counter(expected)
    assert [item.ts_init for item in result] == sorted(item.ts_init for item in result)


@pytest.mark.parametrize("code", CODES)
def test_convert_then_query_per_instrument_with_capture_returns_sorted_identical_objects(
    two_day_captures, converted, code
):
    """Per instrument, the catalog holds MessageParser's objects in ts_init order (stable)."""
    # Arrange
    catalog_path, _ = converted
    instrument_id = f"{code}.KRX"
    expected = by_ts_init(
        [item for item in parsed(two_day_captures) if item.instrument_id.value == instrument_id]
    )

    # Act
    result = queried(catalog_path, instrument_id)

    # Assert
    assert result == expected
    assert all(isinstance(item, KISExpectedFill) for item in result)


def test_convert_with_two_day_capture_writes_one_file_per_instrument_per_kst_day(converted):
    """Each instrument gets one Parquet file per KST trading day, every row inside its day."""
    # Arrange
    catalog_path, report = converted

    # Act
    files = catalog_files(catalog_path)

    # Assert
    assert sorted(files) == ["111W12.KRX", "A11612.KRX", "A50612.KRX"]
    assert all(len(names) == 2 for names in files.values())
    for file in (catalog_path / FILL_DIR).glob("*/*.parquet"):
        ts_init = pq.read_table(file).column("ts_init").to_pylist()
        assert len({(ts + KST_OFFSET_NS) // DAY_NS for ts in ts_init}) == 1, file.name
        assert ts_init == sorted(ts_init), file.name
    assert (report.chunks_written, report.chunks_merged, report.chunks_unchanged) == (6, 0, 0)


def test_convert_with_two_day_capture_reports_records_and_skips_by_reason(two_day_captures, converted):
    """The report counts records per instrument and skipped frames by reason."""
    # Arrange
    _, report = converted
    expected = Counter(item.instrument_id.value for item in parsed(two_day_captures))

    # Act
    skipped = dict(report.skipped)

    # Assert
    assert report.records_by_instrument == expected
    assert report.records == sum(expected.values())
    assert skipped == {"encrypted": 2, "count_mismatch": 2, "bad_value": 2}
    assert dict(report.decode.control) == {"OPSP0000": 2, "pingpong": 2}
    assert dict(report.decode.drift) == {"H0ZFANC0:7": 50}
    assert (report.files, report.messages, report.bad_lines, report.truncated_files) == (2, 210, 0, [])


def test_convert_with_bad_capture_line_reports_it_as_skipped(tmp_path):
    """A bad line inside a capture is counted in the report under bad_capture_line."""
    # Arrange
    capture = tmp_path / "c.jsonl"
    frame = build_data_frame("H0ZFANC0", [_record("A11612", DAY_1, 1)])
    capture.write_text(
        '{"format":"kis-capture","version":1}\n'
        f'{{"ts":{DAY_1},"frame":"{frame}"}}\n'
        "garbage line\n"
        f'{{"ts":{DAY_1 + NS},"frame":"{frame}"}}\n'
    )

    # Act
    report = convert_captures([capture], tmp_path / "catalog")

    # Assert
    assert dict(report.skipped) == {"bad_capture_line": 1}
    assert report.records == 2


def test_convert_with_out_of_order_receive_times_writes_sorted_by_ts_init(tmp_path):
    """Receive times that step back (clock adjustments, captures given newest first) end up sorted."""
    # Arrange
    messages = day_messages(DAY_1, 40)
    first = write_capture(tmp_path / "a", messages[20:])
    second = write_capture(tmp_path / "b", [*messages[:20][::-1]], compress=False)

    # Act
    convert_captures([*first, *second], tmp_path / "catalog")

    # Assert
    result = queried(tmp_path / "catalog", "A11612.KRX")
    assert [item.ts_init for item in result] == sorted(item.ts_init for item in result)
    assert Counter(queried(tmp_path / "catalog")) == Counter(parsed([*first, *second]))


# -- IDEMPOTENCE AND MERGING ---------------------------------------------------------------------


def test_convert_with_same_capture_twice_adds_nothing(two_day_captures, tmp_path):
    """Converting the same capture again keeps the same files and rows and says so."""
    # Arrange
    catalog_path = tmp_path / "catalog"
    convert_captures(two_day_captures, catalog_path)
    files_before, rows_before = catalog_files(catalog_path), catalog_rows(catalog_path)

    # Act
    report = convert_captures(two_day_captures, catalog_path)

    # Assert
    assert catalog_files(catalog_path) == files_before
    assert catalog_rows(catalog_path) == rows_before
    assert (report.chunks_written, report.chunks_merged, report.chunks_unchanged) == (0, 0, 6)


def test_convert_with_superset_capture_merges_without_duplicates(tmp_path):
    """A later capture overlapping (a superset of) an earlier one merges into one file, no duplicates."""
    # Arrange
    messages = day_messages(DAY_1, 100)
    partial = write_capture(tmp_path / "partial", messages[:60])
    full = write_capture(tmp_path / "full", messages)
    catalog_path = tmp_path / "catalog"
    convert_captures(partial, catalog_path)

    # Act
    report = convert_captures(full, catalog_path)

    # Assert
    for code in CODES:
        expected = by_ts_init([i for i in parsed(full) if i.instrument_id.value == f"{code}.KRX"])
        assert queried(catalog_path, f"{code}.KRX") == expected
    assert all(len(names) == 1 for names in catalog_files(catalog_path).values())
    assert (report.chunks_written, report.chunks_merged, report.chunks_unchanged) == (0, 3, 0)


def test_convert_with_partial_overlap_keeps_union_once(tmp_path):
    """Two captures sharing a middle stretch give the union of both, each record once."""
    # Arrange
    messages = day_messages(DAY_1, 100)
    early = write_capture(tmp_path / "early", messages[:70])
    late = write_capture(tmp_path / "late", messages[40:])
    catalog_path = tmp_path / "catalog"

    # Act
    convert_captures(late, catalog_path)
    convert_captures(early, catalog_path)

    # Assert
    everything = write_capture(tmp_path / "all", messages)
    assert Counter(queried(catalog_path)) == Counter(parsed(everything))


def test_convert_with_subset_after_superset_reports_unchanged(tmp_path):
    """Converting a subset of what the catalog holds changes nothing."""
    # Arrange
    messages = day_messages(DAY_1, 100)
    full = write_capture(tmp_path / "full", messages)
    partial = write_capture(tmp_path / "partial", messages[30:60])
    catalog_path = tmp_path / "catalog"
    convert_captures(full, catalog_path)
    rows_before = catalog_rows(catalog_path)

    # Act
    report = convert_captures(partial, catalog_path)

    # Assert
    assert catalog_rows(catalog_path) == rows_before
    assert (report.chunks_written, report.chunks_merged, report.chunks_unchanged) == (0, 0, 3)


def test_convert_with_capture_bridging_two_files_merges_them_into_one(tmp_path):
    """A capture overlapping two disjoint files of the same day merges all three into one file."""
    # Arrange
    messages = day_messages(DAY_1, 120)
    catalog_path = tmp_path / "catalog"
    convert_captures(write_capture(tmp_path / "morning", messages[:40]), catalog_path)
    convert_captures(write_capture(tmp_path / "later", messages[80:]), catalog_path)
    assert all(len(names) == 2 for names in catalog_files(catalog_path).values())
    bridge = write_capture(tmp_path / "bridge", messages[30:90])

    # Act
    report = convert_captures(bridge, catalog_path)

    # Assert
    assert all(len(names) == 1 for names in catalog_files(catalog_path).values())
    everything = write_capture(tmp_path / "all", messages)
    for code in CODES:
        expected = by_ts_init([i for i in parsed(everything) if i.instrument_id.value == f"{code}.KRX"])
        assert queried(catalog_path, f"{code}.KRX") == expected
    assert report.chunks_merged == 3


def test_convert_with_same_capture_listed_twice_in_one_call_writes_each_record_once(tmp_path):
    """`convert a.jsonl.gz a.jsonl.gz` (e.g. overlapping shell globs) writes each record once."""
    # Arrange
    (capture,) = write_capture(tmp_path / "c", day_messages(DAY_1, 20))

    # Act
    convert_captures([capture, capture], tmp_path / "catalog")

    # Assert
    assert Counter(queried(tmp_path / "catalog")) == Counter(parsed([capture]))


def test_convert_with_copy_and_overlapping_capture_in_one_call_writes_union_once(tmp_path):
    """A copy of a capture and an overlapping capture in the same call add each record once."""
    # Arrange
    messages = day_messages(DAY_1, 60)
    (early,) = write_capture(tmp_path / "early", messages[:40])
    copy = tmp_path / "copy.jsonl.gz"
    copy.write_bytes(early.read_bytes())
    (late,) = write_capture(tmp_path / "late", messages[20:])

    # Act
    convert_captures([early, late, copy], tmp_path / "catalog")

    # Assert
    everything = write_capture(tmp_path / "all", messages)
    assert Counter(queried(tmp_path / "catalog")) == Counter(parsed(everything))


def test_convert_with_one_bad_path_raises_before_writing_anything(two_day_captures, tmp_path):
    """A missing capture among good ones fails up front: nothing is written to the catalog."""
    # Arrange
    catalog_path = tmp_path / "catalog"

    # Act
    with pytest.raises(CaptureError, match="capture not found"):
        convert_captures([*two_day_captures, tmp_path / "missing.jsonl.gz"], catalog_path)

    # Assert
    assert catalog_files(catalog_path) == {}


def test_convert_with_header_only_capture_writes_nothing(tmp_path):
    """A capture without data frames writes no files and reports zero records."""
    # Arrange
    capture = write_capture(tmp_path / "c", [(DAY_1, PINGPONG)])

    # Act
    report = convert_captures(capture, tmp_path / "catalog")

    # Assert
    assert report.records == 0
    assert catalog_files(tmp_path / "catalog") == {}


def test_convert_with_progress_callback_reports_every_byte(two_day_captures, tmp_path):
    """The progress callback receives, in total, the captures' size on disk."""
    # Arrange
    seen = []

    # Act
    convert_captures(two_day_captures, tmp_path / "catalog", progress=seen.append)

    # Assert
    assert sum(seen) == sum(path.stat().st_size for path in two_day_captures)
    assert all(step >= 0 for step in seen)


# -- BACKTEST ------------------------------------------------------------------------------------


class RecordingStrategyConfig(StrategyConfig, frozen=True):
    instrument_id: str | None = None


class RecordingStrategy(Strategy):
    """Subscribes to KISExpectedFill (optionally one instrument) and keeps what on_data receives."""

    def __init__(self, config: RecordingStrategyConfig) -> None:
        super().__init__(config)
        self.received: list = []

    def on_start(self) -> None:
        instrument_id = self.config.instrument_id
        self.subscribe_data(
            DataType(KISExpectedFill),
            client_id=ClientId("KIS"),
            instrument_id=InstrumentId.from_str(instrument_id) if instrument_id else None,
        )

    def on_data(self, data) -> None:
        self.received.append(data)


@pytest.mark.filterwarnings("ignore:Timestamp.utcnow is deprecated")
def test_backtest_node_with_converted_catalog_delivers_every_record(two_day_captures, converted):
    """BacktestNode + BacktestDataConfig(data_cls=KISExpectedFill, client_id="KIS") feeds on_data every
    record, and an instrument_id subscription only that instrument's."""
    # Arrange
    catalog_path, _ = converted
    run = BacktestRunConfig(
        engine=BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")),
        venues=[],
        data=[BacktestDataConfig(catalog_path=str(catalog_path), data_cls=KISExpectedFill, client_id="KIS")],
    )
    node = BacktestNode(configs=[run])
    node.build()
    everything = RecordingStrategy(RecordingStrategyConfig(order_id_tag="ALL"))
    one = RecordingStrategy(RecordingStrategyConfig(order_id_tag="ONE", instrument_id="A50612.KRX"))
    node.get_engine(run.id).add_strategies([everything, one])
    expected = parsed(two_day_captures)

    # Act
    node.run()

    # Assert
    assert len(everything.received) == len(expected)
    assert Counter(everything.received) == Counter(expected)
    assert [item.ts_init for item in everything.received] == sorted(item.ts_init for item in expected)
    assert one.received == by_ts_init([item for item in expected if item.instrument_id.value == "A50612.KRX"])
    node.dispose()
