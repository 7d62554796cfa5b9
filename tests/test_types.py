"""KISExpectedFill: value semantics, serialisation, and its registered columnar catalog codec."""

from __future__ import annotations

import pickle

import msgspec
import pyarrow as pa
import pytest
from nautilus_trader.core.data import Data
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.serialization.arrow.serializer import ArrowSerializer
from nautilus_trader.serialization.arrow.serializer import get_schema
from nautilus_trader.serialization.serializer import MsgSpecSerializer

import kis_adapter
from kis_adapter.types import KISExpectedFill
from kis_adapter.types import instrument_id_for

TS_EVENT = 1_764_027_001_000_000_000  # 2025-11-25 08:30:01 KST
TS_INIT = 1_764_027_001_123_456_789


def fill(**overrides) -> KISExpectedFill:
    values = {
        "instrument_id": InstrumentId.from_str("A11612.KRX"),
        "price": 75000.0,
        "change": -100.0,
        "sign": 5,
        "change_pct": -0.13,
        "phase_code": "311",
        "quantity": 120,
        "ts_event": TS_EVENT,
        "ts_init": TS_INIT,
    }
    values.update(overrides)
    return KISExpectedFill(**values)


def test_expected_fill_with_fields_exposes_them_and_is_nautilus_data():
    """Fields and timestamps read back as given; the type is a Nautilus Data."""
    # Arrange / Act
    item = fill()

    # Assert
    assert isinstance(item, Data)
    assert (item.instrument_id, item.price, item.change, item.sign, item.change_pct) == (
        InstrumentId.from_str("A11612.KRX"),
        75000.0,
        -100.0,
        5,
        -0.13,
    )
    assert (item.phase_code, item.quantity, item.ts_event, item.ts_init) == ("311", 120, TS_EVENT, TS_INIT)


def test_expected_fill_with_package_attribute_is_the_same_class():
    """``kis_adapter.KISExpectedFill`` (the public name) is the class in kis_adapter.types."""
    # Arrange / Act / Assert
    assert kis_adapter.KISExpectedFill is KISExpectedFill


def test_expected_fill_equality_with_identical_values_is_equal_and_hashes_equal():
    """Two fills with the same values are equal and hash the same."""
    # Arrange
    first, second = fill(), fill()

    # Act / Assert
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


@pytest.mark.parametrize(
    "override",
    [
        {"instrument_id": InstrumentId.from_str("A50612.KRX")},
        {"price": 75050.0},
        {"change": -50.0},
        {"sign": 4},
        {"change_pct": -0.12},
        {"phase_code": "112"},
        {"quantity": 121},
        {"ts_event": TS_EVENT + 1},
        {"ts_init": TS_INIT + 1},
    ],
)
def test_expected_fill_equality_with_one_field_different_is_not_equal(override):
    """Every field, the timestamps included, takes part in == (the decorator's == ignores timestamps)."""
    # Arrange
    base, other = fill(), fill(**override)

    # Act / Assert
    assert base != other


def test_expected_fill_equality_with_other_type_is_not_equal():
    """A fill never equals a tuple or dict of its values."""
    # Arrange
    item = fill()

    # Act / Assert
    assert item != item.to_dict()
    assert item != ()


def test_expected_fill_with_zero_price_has_no_price():
    """price 0.0 means no expected price: has_price is False and the 0.0 is kept."""
    # Arrange / Act
    item = fill(price=0.0, change=-97200.0, change_pct=-100.0)

    # Assert
    assert item.price == 0.0
    assert not item.has_price
    assert fill().has_price


def test_expected_fill_with_pickle_round_trip_is_equal():
    """Pickling (used by multiprocess tooling) gives back an equal object."""
    # Arrange
    item = fill()

    # Act
    restored = pickle.loads(pickle.dumps(item))

    # Assert
    assert restored == item
    assert restored.ts_init == TS_INIT


def test_expected_fill_to_dict_with_values_returns_exact_mapping():
    """to_dict gives the type name, the id as a string and every value."""
    # Arrange / Act
    values = fill().to_dict()

    # Assert
    assert values == {
        "type": "KISExpectedFill",
        "instrument_id": "A11612.KRX",
        "price": 75000.0,
        "change": -100.0,
        "sign": 5,
        "change_pct": -0.13,
        "phase_code": "311",
        "quantity": 120,
        "ts_event": TS_EVENT,
        "ts_init": TS_INIT,
    }


def test_expected_fill_from_dict_with_to_dict_output_round_trips():
    """from_dict(to_dict(x)) == x."""
    # Arrange
    item = fill(price=0.0, phase_code="")

    # Act
    restored = KISExpectedFill.from_dict(item.to_dict())

    # Assert
    assert restored == item


def test_expected_fill_repr_with_timestamps_shows_iso_times():
    """The repr names the instrument and shows timestamps as ISO 8601 UTC."""
    # Arrange / Act
    text = repr(fill())

    # Assert
    assert text == (
        "KISExpectedFill(instrument_id=A11612.KRX, price=75000.0, change=-100.0, sign=5, change_pct=-0.13, "
        "phase_code='311', quantity=120, ts_event=2025-11-24T23:30:01.000000000Z, "
        "ts_init=2025-11-24T23:30:01.123456789Z)"
    )


def test_batch_encoder_with_fills_then_from_arrow_returns_identical_objects():
    """to_batch → from_arrow is the identity, across instruments, on a Table and a RecordBatch."""
    # Arrange
    items = [
        fill(),
        fill(instrument_id=InstrumentId.from_str("111W12.KRX"), price=0.0, quantity=0, ts_init=TS_INIT + 1),
        fill(phase_code="", change_pct=1.5e-7, ts_init=TS_INIT + 2),
    ]

    # Act
    batch = KISExpectedFill.to_batch(items)
    from_batch = KISExpectedFill.from_arrow(batch)
    from_table = KISExpectedFill.from_arrow(pa.Table.from_batches([batch, batch]))

    # Assert
    assert batch.schema.equals(KISExpectedFill.SCHEMA)
    assert from_batch == items
    assert from_table == items + items


def test_from_arrow_with_empty_table_returns_empty_list():
    """An empty table decodes to no objects."""
    # Arrange
    table = KISExpectedFill.SCHEMA.empty_table()

    # Act / Assert
    assert KISExpectedFill.from_arrow(table) == []


def test_register_arrow_with_import_registers_schema_batch_encoder_and_decoder():
    """Importing kis_adapter.types registers the schema and the columnar codec with Nautilus."""
    # Arrange
    items = [fill(), fill(ts_init=TS_INIT + 5)]

    # Act
    table = ArrowSerializer.serialize_batch(items, KISExpectedFill)
    restored = ArrowSerializer.deserialize(KISExpectedFill, table)

    # Assert
    assert get_schema(KISExpectedFill) is KISExpectedFill.SCHEMA
    assert table.num_rows == 2
    assert restored == items


def test_register_serializable_type_with_msgpack_round_trips():
    """The type is registered with Nautilus' msgspec serializer (message bus, cache)."""
    # Arrange
    serializer = MsgSpecSerializer(encoding=msgspec.msgpack)

    # Act
    restored = serializer.deserialize(serializer.serialize(fill()))

    # Assert
    assert restored == fill()


def test_instrument_id_for_with_short_code_appends_krx_unpadded():
    """``A11612`` → ``A11612.KRX``: the code exactly as in the frame."""
    # Arrange / Act
    iid = instrument_id_for("A11612")

    # Assert
    assert iid == InstrumentId.from_str("A11612.KRX")
    assert (iid.symbol.value, iid.venue.value) == ("A11612", "KRX")
