"""
`KISExpectedFill`: one H0ZFANC0 record as Nautilus custom data, with a columnar catalog codec.

Hand-written rather than ``@customdataclass``: a slotted class builds several times faster on the
hot path, compares timestamps in ``==`` (the decorator's does not), and its batch encoder and
columnar decoder make catalog writes and backtest loads run at Arrow speed instead of one
RecordBatch per object. Importing this module registers the type with the catalog and serializer.
"""

import pyarrow as pa
from nautilus_trader.core.data import Data
from nautilus_trader.core.datetime import unix_nanos_to_iso8601
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.serialization.arrow.serializer import register_arrow
from nautilus_trader.serialization.base import register_serializable_type

from kis_adapter.constants import KRX_VENUE_NAME

_FIELDS = ("instrument_id", "price", "change", "sign", "change_pct", "phase_code", "quantity")

SIGN_LIMIT_UP = 1
SIGN_UP = 2
SIGN_FLAT = 3
SIGN_LIMIT_DOWN = 4
SIGN_DOWN = 5


class KISExpectedFill(Data):
    """
    The expected (indicative) price of a KRX stock-futures single-price auction (KIS TR H0ZFANC0).

    Parameters
    ----------
    instrument_id : InstrumentId
        ``<KIS short code>.KRX``, the code exactly as KIS sends it.
    price : float
        Expected auction price in KRW. ``0.0`` means KIS published no expected price.
    change : float
        Signed change of the expected price vs the previous close, KRW.
    sign : int
        KIS change sign: 1 limit up, 2 up, 3 flat, 4 limit down, 5 down.
    change_pct : float
        Change vs the previous close, percent.
    phase_code : str
        Raw market-operation code (ANTC_MKOP_CLS_CODE), kept verbatim.
    quantity : int
        Expected fill quantity (contracts); 0 in the legacy 7-field layout.
    ts_event : int
        The frame's KST HHMMSS on the KST date nearest to `ts_init`, as UTC ns.
    ts_init : int
        Receive time (UTC ns): the live clock, or the capture's recorded ``ts``.

    """

    __slots__ = ("_ts_event", "_ts_init", *_FIELDS)

    def __init__(
        self,
        instrument_id: InstrumentId,
        price: float,
        change: float,
        sign: int,
        change_pct: float,
        phase_code: str,
        quantity: int,
        ts_event: int,
        ts_init: int,
    ) -> None:
        self.instrument_id = instrument_id
        self.price = price
        self.change = change
        self.sign = sign
        self.change_pct = change_pct
        self.phase_code = phase_code
        self.quantity = quantity
        self._ts_event = ts_event
        self._ts_init = ts_init

    @property
    def ts_event(self) -> int:
        return self._ts_event

    @property
    def ts_init(self) -> int:
        return self._ts_init

    @property
    def has_price(self) -> bool:
        """False when KIS published no expected price (``price == 0.0``); not a -100 % move."""
        return self.price != 0.0

    def _key(self) -> tuple:
        return (
            self.instrument_id,
            self.price,
            self.change,
            self.sign,
            self.change_pct,
            self.phase_code,
            self.quantity,
            self._ts_event,
            self._ts_init,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KISExpectedFill):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"KISExpectedFill(instrument_id={self.instrument_id}, price={self.price}, change={self.change}, "
            f"sign={self.sign}, change_pct={self.change_pct}, phase_code={self.phase_code!r}, "
            f"quantity={self.quantity}, ts_event={unix_nanos_to_iso8601(self._ts_event)}, "
            f"ts_init={unix_nanos_to_iso8601(self._ts_init)})"
        )

    def __reduce__(self):
        return (KISExpectedFill, self._key())

    # -- SERIALIZATION ----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "type": "KISExpectedFill",
            "instrument_id": self.instrument_id.value,
            "price": self.price,
            "change": self.change,
            "sign": self.sign,
            "change_pct": self.change_pct,
            "phase_code": self.phase_code,
            "quantity": self.quantity,
            "ts_event": self._ts_event,
            "ts_init": self._ts_init,
        }

    @staticmethod
    def from_dict(values: dict) -> "KISExpectedFill":
        return KISExpectedFill(
            instrument_id=InstrumentId.from_str(values["instrument_id"]),
            price=float(values["price"]),
            change=float(values["change"]),
            sign=int(values["sign"]),
            change_pct=float(values["change_pct"]),
            phase_code=str(values["phase_code"]),
            quantity=int(values["quantity"]),
            ts_event=int(values["ts_event"]),
            ts_init=int(values["ts_init"]),
        )

    SCHEMA = pa.schema(
        [
            pa.field("instrument_id", pa.string(), nullable=False),
            pa.field("price", pa.float64(), nullable=False),
            pa.field("change", pa.float64(), nullable=False),
            pa.field("sign", pa.int64(), nullable=False),
            pa.field("change_pct", pa.float64(), nullable=False),
            pa.field("phase_code", pa.string(), nullable=False),
            pa.field("quantity", pa.int64(), nullable=False),
            pa.field("ts_event", pa.uint64(), nullable=False),
            pa.field("ts_init", pa.uint64(), nullable=False),
        ],
        metadata={"type": "KISExpectedFill"},
    )

    @staticmethod
    def columns_to_batch(columns: dict[str, list]) -> pa.RecordBatch:
        """Build a RecordBatch from plain column lists (the one place the catalog layout is defined)."""
        return pa.RecordBatch.from_pydict(columns, schema=KISExpectedFill.SCHEMA)

    @staticmethod
    def to_batch(data: list["KISExpectedFill"]) -> pa.RecordBatch:
        return KISExpectedFill.columns_to_batch(
            {
                "instrument_id": [d.instrument_id.value for d in data],
                "price": [d.price for d in data],
                "change": [d.change for d in data],
                "sign": [d.sign for d in data],
                "change_pct": [d.change_pct for d in data],
                "phase_code": [d.phase_code for d in data],
                "quantity": [d.quantity for d in data],
                "ts_event": [d._ts_event for d in data],
                "ts_init": [d._ts_init for d in data],
            },
        )

    @staticmethod
    def to_arrow(data: "KISExpectedFill") -> pa.RecordBatch:
        return KISExpectedFill.to_batch([data])

    @staticmethod
    def from_arrow(table: pa.Table | pa.RecordBatch) -> list["KISExpectedFill"]:
        """Columnar decoder: one pass over Python lists, one `InstrumentId` per distinct code."""
        if table.num_rows == 0:
            return []
        ids_column = table.column("instrument_id")
        if isinstance(ids_column, pa.ChunkedArray):
            ids_column = ids_column.combine_chunks()
        encoded = ids_column.dictionary_encode()
        ids = [InstrumentId.from_str(value) for value in encoded.dictionary.to_pylist()]
        instrument_ids = [ids[i] for i in encoded.indices.to_pylist()]
        return list(
            map(
                KISExpectedFill,
                instrument_ids,
                table.column("price").to_pylist(),
                table.column("change").to_pylist(),
                table.column("sign").to_pylist(),
                table.column("change_pct").to_pylist(),
                table.column("phase_code").to_pylist(),
                table.column("quantity").to_pylist(),
                table.column("ts_event").to_pylist(),
                table.column("ts_init").to_pylist(),
            ),
        )


def instrument_id_for(code: str) -> InstrumentId:
    """``A11612`` → ``A11612.KRX`` (the code unpadded, exactly as in the frame)."""
    return InstrumentId.from_str(f"{code}.{KRX_VENUE_NAME}")


register_serializable_type(KISExpectedFill, KISExpectedFill.to_dict, KISExpectedFill.from_dict)
register_arrow(
    KISExpectedFill,
    KISExpectedFill.SCHEMA,
    encoder=KISExpectedFill.to_arrow,
    decoder=KISExpectedFill.from_arrow,
    batch_encoder=KISExpectedFill.to_batch,
)
