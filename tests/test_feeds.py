"""
The three feeds, record by record: official example frames to exact Nautilus values, the aggressor
rule, trades and books that do not add up, no book inside a single-price call, and the TR registry.

Everything goes through the real decode path (`MessageParser`: frame → `Decoder` → the TR's mapper)
and, for the book's call rule, through the catalog columns too (`kis-adapter convert`'s path).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import pkgutil
from types import MappingProxyType

import pytest
from feed_frames import BOOK_FRAME
from feed_frames import TRADE_FRAME
from feed_frames import book_fields
from feed_frames import trade_fields
from nautilus_trader.model.data import OrderBookDepth10
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import FIXED_PRECISION

import kis_adapter.feeds as feeds_package
import kis_adapter.protocol.trs as trs_package
from kis_adapter.feeds import FeedContext
from kis_adapter.feeds import feed
from kis_adapter.feeds import feeds
from kis_adapter.krx import TradingCalendar
from kis_adapter.krx import default_calendar
from kis_adapter.parsing import MessageParser
from kis_adapter.protocol import SPECS
from kis_adapter.protocol import Decoder
from kis_adapter.protocol import Layout
from kis_adapter.protocol import TRSpec
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol.trs import H0ZFANC0
from kis_adapter.protocol.trs import H0ZFASP0
from kis_adapter.protocol.trs import H0ZFCNT0
from kis_adapter.protocol.trs._common import day_start
from kis_adapter.protocol.trs._common import event_time

KST = dt.timezone(dt.timedelta(hours=9))


def kst(text: str) -> int:
    """``"2026-07-09 09:16:39"`` (KST wall time) → UTC ns, independently of the code under test."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=KST).timestamp()) * 1_000_000_000


DAY = "2026-07-09"  # a Thursday, a regular KRX session
IID = InstrumentId.from_str("111V06.KRX")


def trade(hhmmss: str, acml: int, sell: int, buy: int, size: int, code: str = "111V06", price: int = 77900):
    fields = trade_fields(
        FUTS_SHRN_ISCD=code,
        BSOP_HOUR=hhmmss,
        STCK_PRPR=price,
        LAST_CNQN=size,
        ACML_VOL=acml,
        SELN_CNTG_SMTN=sell,
        SHNU_CNTG_SMTN=buy,
    )
    return build_data_frame(H0ZFCNT0, [fields])


def book(hhmmss: str = "092304", **kwargs) -> str:
    return build_data_frame(H0ZFASP0, [book_fields(hhmmss, **kwargs)])


def parse_all(parser: MessageParser, frames: list[str], day: str = DAY) -> list:
    """Each frame received one second after its records' HHMMSS (the usual live lag) on `day`."""
    out = []
    for frame in frames:
        hhmmss = frame.split("|", 3)[3].split("^")[1]
        ts = kst(f"{day} {hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}") + 1_000_000_000
        out.extend(parser.parse(ts, frame))
    return out


# -- TRADES --------------------------------------------------------------------------------------


def test_trade_with_official_example_frame_decodes_to_exact_trade_tick():
    """The official H0ZFCNT0 frame → one TradeTick: price, size, side, trade id, ts_event in KST."""
    # Arrange
    parser = MessageParser()
    ts_init = kst(f"{DAY} 09:16:39") + 250_000_000

    # Act
    objects = parser.parse(ts_init, TRADE_FRAME)

    # Assert
    assert [type(o) for o in objects] == [TradeTick]
    tick = objects[0]
    assert tick.instrument_id == IID
    assert (str(tick.price), tick.price.precision) == ("77900", 0)
    assert (str(tick.size), tick.size.precision) == ("5", 0)
    # The first record of the day compares with zeros: both totals grew (1075 sell, 626 buy).
    assert tick.aggressor_side == AggressorSide.NO_AGGRESSOR
    assert str(tick.trade_id) == "20260709-1724"
    assert tick.ts_event == kst(f"{DAY} 09:16:39") == 1_783_556_199_000_000_000
    assert tick.ts_init == ts_init
    assert parser.decoder.stats.records == 1
    assert not parser.decoder.stats.skipped and not parser.decoder.stats.drift
    assert not parser.not_emitted


def test_trade_with_hhmmss_before_midnight_received_after_has_previous_day_in_trade_id():
    """A 23:59:59 trade received at 00:00:01 is dated the day before, in ts_event and trade id alike."""
    # Arrange
    parser = MessageParser()

    # Act
    [tick] = parser.parse(kst("2026-07-10 00:00:01"), trade("235959", 1724, 1075, 626, 5))

    # Assert
    assert tick.ts_event == kst("2026-07-09 23:59:59")
    assert str(tick.trade_id) == "20260709-1724"


def test_trade_aggressor_with_cumulative_volumes_follows_the_design_rule():
    """Only the buy total grew → BUYER, only the sell total → SELLER, else NO_AGGRESSOR (per code)."""
    # Arrange
    frames = [
        trade("091639", 1724, 1075, 626, 5),  # first of the day: both grew from 0 → none
        trade("091640", 1729, 1075, 631, 5),  # buy +5 → BUYER
        trade("091641", 1732, 1078, 631, 3),  # sell +3 → SELLER
        trade("091641", 10, 0, 10, 10, code="A11612"),  # another code: its own first record, only buy
        trade("091642", 1742, 1078, 631, 10),  # neither grew (an auction print) → none
        trade("091643", 1746, 1080, 633, 4),  # both grew → none
        trade("091644", 1747, 1081, 633, 1),  # sell +1 → SELLER (the other code did not interfere)
    ]

    # Act
    ticks = parse_all(MessageParser(), frames)

    # Assert
    assert [(t.instrument_id.symbol.value, t.aggressor_side) for t in ticks] == [
        ("111V06", AggressorSide.NO_AGGRESSOR),
        ("111V06", AggressorSide.BUYER),
        ("111V06", AggressorSide.SELLER),
        ("A11612", AggressorSide.BUYER),
        ("111V06", AggressorSide.NO_AGGRESSOR),
        ("111V06", AggressorSide.NO_AGGRESSOR),
        ("111V06", AggressorSide.SELLER),
    ]
    assert [str(t.trade_id) for t in ticks][:3] == ["20260709-1724", "20260709-1729", "20260709-1732"]


def test_trade_aggressor_on_a_new_kst_day_compares_with_zeros_again():
    """The state is per KST day: the next day's first record compares with zeros, not yesterday's totals."""
    # Arrange
    parser = MessageParser()
    parse_all(parser, [trade("151900", 5000, 2500, 2400, 5)], day="2026-07-09")

    # Act: the next morning the totals restart; only the buy side has volume so far.
    [tick] = parse_all(parser, [trade("084500", 30, 0, 30, 30)], day="2026-07-10")

    # Assert
    assert tick.aggressor_side == AggressorSide.BUYER
    assert str(tick.trade_id) == "20260710-30"
    assert not parser.not_emitted  # a new day is not a decrease


def test_trade_with_last_cnqn_not_matching_acml_vol_change_is_counted_and_keeps_kis_values():
    """LAST_CNQN 5 but ACML_VOL +7: counted volume_mismatch; the tick keeps size 5 and id -<ACML_VOL>."""
    # Arrange
    parser = MessageParser()
    frames = [trade("091639", 1724, 1075, 626, 5), trade("091640", 1731, 1075, 633, 5)]

    # Act
    ticks = parse_all(parser, frames)

    # Assert
    assert len(ticks) == 2
    assert (str(ticks[1].size), str(ticks[1].trade_id)) == ("5", "20260709-1731")
    assert ticks[1].aggressor_side == AggressorSide.BUYER
    assert parser.not_emitted == {"volume_mismatch": 1}


def test_trade_with_cumulative_volume_going_down_is_counted_and_never_invented():
    """ACML_VOL or a side total below the previous record's: counted cumulative_decrease, values kept."""
    # Arrange
    parser = MessageParser()
    frames = [
        trade("091639", 1724, 1075, 626, 5),
        trade("091640", 1700, 1075, 626, 5),  # ACML_VOL went down
        trade("091641", 1705, 1070, 626, 5),  # the sell total went down
    ]

    # Act
    ticks = parse_all(parser, frames)

    # Assert
    assert [str(t.trade_id) for t in ticks] == ["20260709-1724", "20260709-1700", "20260709-1705"]
    assert [str(t.size) for t in ticks] == ["5", "5", "5"]
    assert parser.not_emitted == {"cumulative_decrease": 2}


def test_trade_with_zero_price_or_size_is_not_emitted_and_counted_by_reason():
    """A record with price 0 or size 0 is not a trade: nothing published, counted zero_price / zero_size."""
    # Arrange
    parser = MessageParser()
    frames = [trade("091639", 1724, 1075, 626, 5, price=0), trade("091640", 1724, 1075, 626, 0)]

    # Act
    ticks = parse_all(parser, frames)

    # Assert
    assert ticks == []
    assert parser.not_emitted == {"zero_price": 1, "zero_size": 1}


@pytest.mark.parametrize(
    ("width", "drift"),
    [
        (43, "H0ZFCNT0:43"),  # an older, shorter layout ending at SHNU_CNTG_SMTN: still a trade
        (52, "H0ZFCNT0:52"),  # three new fields appended by KIS
    ],
)
def test_trade_records_with_other_width_decode_by_position_and_count_drift(width, drift):
    """A two-record frame of 43 or 52 fields per record: both trades decoded by position, drift counted."""
    # Arrange
    first = trade_fields()
    second = trade_fields(BSOP_HOUR="091640", ACML_VOL=1729, SHNU_CNTG_SMTN=631)
    records = [(r + [str(i) for i in range(width - len(r))])[:width] for r in (first, second)]
    parser = MessageParser()

    # Act
    ticks = parser.parse(kst(f"{DAY} 09:16:41"), build_data_frame(H0ZFCNT0, records))

    # Assert
    assert [(str(t.price), str(t.size), str(t.trade_id)) for t in ticks] == [
        ("77900", "5", "20260709-1724"),
        ("77900", "5", "20260709-1729"),
    ]
    assert ticks[1].aggressor_side == AggressorSide.BUYER
    assert parser.decoder.stats.drift == {drift: 2}
    assert not parser.decoder.stats.skipped


def test_trade_records_narrower_than_the_fields_a_trade_needs_are_skipped_and_counted():
    """42 fields (no SHNU_CNTG_SMTN): the aggressor cannot be inferred; skipped as too_few_fields."""
    # Arrange
    parser = MessageParser()

    # Act
    objects = parser.parse(kst(f"{DAY} 09:16:40"), build_data_frame(H0ZFCNT0, [trade_fields()[:42]]))

    # Assert
    assert objects == []
    assert parser.decoder.stats.skipped == {"too_few_fields": 1}


def test_trade_with_garbage_or_negative_value_skips_that_record_only():
    """In a three-record frame, a bad price and a negative size skip two records, counted bad_value."""
    # Arrange
    records = [
        trade_fields(STCK_PRPR="77,900"),
        trade_fields(BSOP_HOUR="091640", ACML_VOL=1729, SHNU_CNTG_SMTN=631),
        trade_fields(LAST_CNQN=-5),
    ]
    parser = MessageParser()

    # Act
    ticks = parser.parse(kst(f"{DAY} 09:16:41"), build_data_frame(H0ZFCNT0, records))

    # Assert
    assert [str(t.trade_id) for t in ticks] == ["20260709-1729"]
    assert parser.decoder.stats.skipped == {"bad_value": 2}


# -- BOOK ----------------------------------------------------------------------------------------


def test_book_with_official_example_frame_decodes_to_exact_depth_and_quote():
    """The official H0ZFASP0 frame → OrderBookDepth10 with the 10 levels each side, and a level-1 quote."""
    # Arrange
    parser = MessageParser()
    ts_init = kst(f"{DAY} 09:23:04") + 100_000_000

    # Act
    objects = parser.parse(ts_init, BOOK_FRAME)

    # Assert
    assert [type(o) for o in objects] == [OrderBookDepth10, QuoteTick]
    depth, quote = objects
    assert depth.instrument_id == IID
    assert [(int(o.price), int(o.size)) for o in depth.asks] == list(
        zip(
            [79700, 79800, 79900, 80000, 80200, 80300, 80500, 81100, 84900, 85900],
            [950, 4148, 988, 6, 9, 1, 3, 15, 5, 10],
            strict=True,
        )
    )
    assert [(int(o.price), int(o.size)) for o in depth.bids] == list(
        zip(
            [79500, 79400, 79300, 79200, 79100, 79000, 78900, 78800, 78700, 78600],
            [4404, 2277, 1321, 3440, 330, 2237, 1835, 362, 83, 15],
            strict=True,
        )
    )
    assert depth.ask_counts == [1, 18, 6, 2, 2, 1, 3, 1, 1, 1]
    assert depth.bid_counts == [8, 6, 4, 8, 4, 8, 7, 11, 11, 3]
    assert depth.asks[0].price.precision == depth.asks[0].size.precision == 0
    assert depth.flags == 32 | 128  # F_SNAPSHOT | F_LAST: each message is a full book
    assert (depth.ts_event, depth.ts_init) == (kst(f"{DAY} 09:23:04"), ts_init)
    assert (str(quote.bid_price), str(quote.ask_price), str(quote.bid_size), str(quote.ask_size)) == (
        "79500",
        "79700",
        "4404",
        "950",
    )
    assert (quote.ts_event, quote.ts_init) == (depth.ts_event, ts_init)
    assert not parser.not_emitted and not parser.decoder.stats.skipped


def test_book_with_price_zero_levels_gives_empty_levels():
    """Three asks, the rest 0: levels 4-10 are empty (price 0, size 0, count 0) whatever the wire size."""
    # Arrange
    parser = MessageParser()

    # Act
    depth, quote = parser.parse(kst(f"{DAY} 09:23:05"), book(asks=[79700, 79800, 79900]))

    # Assert
    assert [int(o.price) for o in depth.asks] == [79700, 79800, 79900, 0, 0, 0, 0, 0, 0, 0]
    assert [int(o.size) for o in depth.asks] == [950, 4148, 988, 0, 0, 0, 0, 0, 0, 0]  # wire sizes 6, 9, ...
    assert depth.ask_counts == [1, 18, 6, 0, 0, 0, 0, 0, 0, 0]
    assert [int(o.price) for o in depth.bids][:2] == [79500, 79400]
    assert isinstance(quote, QuoteTick)


@pytest.mark.parametrize(
    ("asks", "bids"),
    [([], None), (None, [])],
    ids=["no-asks", "no-bids"],
)
def test_book_with_one_side_empty_gives_depth_but_no_quote(asks, bids):
    """KIS sends 0 for an empty side (a book locked at a limit): a depth with empty levels, no QuoteTick."""
    # Arrange
    parser = MessageParser()

    # Act
    objects = parser.parse(kst(f"{DAY} 09:23:05"), book(asks=asks, bids=bids))

    # Assert
    assert [type(o) for o in objects] == [OrderBookDepth10]
    side = objects[0].asks if asks == [] else objects[0].bids
    assert all(int(o.price) == 0 and int(o.size) == 0 for o in side)


@pytest.mark.parametrize(
    ("asks", "bids", "reason"),
    [
        ([79800, 79700], None, "book_out_of_order"),  # asks must rise away from the touch
        (None, [79400, 79500], "book_out_of_order"),  # bids must fall
        ([79700, 79700], None, "book_out_of_order"),  # one price on two levels
        ([79700, 0, 79900], None, "book_out_of_order"),  # an empty level before a non-empty one
        ([79500], [79500], "book_crossed"),  # best bid at the best ask
    ],
)
def test_book_with_levels_out_of_order_is_not_emitted_and_counted(asks, bids, reason):
    """A book whose levels are not strictly ordered (or crossed) never reaches a matching engine: counted."""
    # Arrange
    parser = MessageParser()

    # Act
    objects = parser.parse(kst(f"{DAY} 09:23:05"), book(asks=asks, bids=bids))

    # Assert
    assert objects == []
    assert parser.not_emitted == {reason: 1}


def test_book_records_with_other_width_decode_by_position_and_count_drift():
    """62 fields (no totals) and 70 fields (two new ones): books decoded, drift counted per width."""
    # Arrange
    parser = MessageParser()
    short = build_data_frame(H0ZFASP0, [book_fields()[:62]])
    wide = build_data_frame(H0ZFASP0, [[*book_fields("092305"), "1", "2"]] * 2)
    too_short = build_data_frame(H0ZFASP0, [book_fields()[:61]])  # BIDP_RSQN10 missing

    # Act
    objects = parse_all(parser, [short, wide, too_short])

    # Assert
    assert [type(o) for o in objects] == [OrderBookDepth10, QuoteTick] * 3
    assert all(int(o.bids[9].size) == 15 for o in objects if isinstance(o, OrderBookDepth10))
    assert parser.decoder.stats.drift == {"H0ZFASP0:62": 1, "H0ZFASP0:70": 2}
    assert parser.decoder.stats.skipped == {"too_few_fields": 1}


# -- NO BOOK INSIDE A SINGLE-PRICE CALL ------------------------------------------------------------

# (day, HHMMSS, emitted?) on the maintained calendar (XKRX plus the bundled exam days).
CALL_CASES = [
    (DAY, "082959", True),  # before the pre-open call
    (DAY, "083000", False),  # the pre-open call: 08:30:00 <= t < 08:45:00
    (DAY, "084459", False),
    (DAY, "084500", True),  # continuous trading from 08:45:00
    (DAY, "153459", True),
    (DAY, "153500", False),  # the closing call: 15:35:00 <= t < 15:45:00
    (DAY, "154459", False),
    (DAY, "154500", True),
    # The college entrance exam day (2026-11-19): the whole day an hour later.
    ("2026-11-19", "083500", True),
    ("2026-11-19", "093000", False),
    ("2026-11-19", "094459", False),
    ("2026-11-19", "094500", True),
    ("2026-11-19", "154000", True),
    ("2026-11-19", "163500", False),
    ("2026-11-19", "164459", False),
    ("2026-11-19", "164500", True),
    # The year's first session opens an hour late (XKRX knows it); the close is as usual.
    ("2026-01-02", "083500", True),
    ("2026-01-02", "093000", False),
    ("2026-01-02", "094500", True),
    ("2026-01-02", "153500", False),
]


@pytest.mark.parametrize(("day", "hhmmss", "emitted"), CALL_CASES)
def test_book_inside_a_single_price_call_is_never_emitted_live(day, hhmmss, emitted):
    """A book stamped inside a call of its day gives no depth and no quote; counted book_in_call."""
    # Arrange
    parser = MessageParser(context=FeedContext(calendar=default_calendar()))

    # Act
    objects = parse_all(parser, [book(hhmmss)], day=day)

    # Assert
    assert bool(objects) is emitted
    assert parser.not_emitted == ({} if emitted else {"book_in_call": 1})


def test_book_inside_a_single_price_call_is_never_written_to_the_catalog():
    """The catalog path (`convert`'s columns) applies the same rule: only books outside calls are rows."""
    # Arrange
    context = FeedContext(calendar=default_calendar())
    columns = feed(H0ZFASP0).columns(context)
    decoder = Decoder()
    for day, hhmmss, _ in CALL_CASES:
        ts = kst(f"{day} {hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}") + 1_000_000_000
        columns.add(decoder.decode(ts, book(hhmmss)).rows, ts)

    # Act
    tables = [(cls, table) for _, (cls, _, table) in columns.drain()]

    # Assert
    stamped = sorted(
        ts for cls, table in tables if cls is OrderBookDepth10 for ts in table.column("ts_event").to_pylist()
    )
    quoted = sorted(
        ts for cls, table in tables if cls is QuoteTick for ts in table.column("ts_event").to_pylist()
    )
    wanted = sorted(kst(f"{d} {h[:2]}:{h[2:4]}:{h[4:]}") for d, h, emitted in CALL_CASES if emitted)
    assert stamped == quoted == wanted
    assert columns.counts == {"book_in_call": sum(not emitted for *_, emitted in CALL_CASES)}


def test_book_of_a_contract_on_its_last_trading_day_stops_at_its_earlier_closing_call():
    """On its last trading day a contract's closing call is 15:10-15:20; other codes keep 15:35-15:45."""
    # Arrange
    context = FeedContext(calendar=default_calendar(), last_trading_days={"111V06": dt.date(2026, 7, 9)})
    parser = MessageParser(context=context)
    frames = [book("151000"), book("151959"), book("152000", code="A11612"), book("151500", code="A11612")]

    # Act
    objects = parse_all(parser, frames)

    # Assert
    depths = [o for o in objects if isinstance(o, OrderBookDepth10)]
    assert [(d.instrument_id.symbol.value, d.ts_event) for d in depths] == [
        ("A11612", kst(f"{DAY} 15:20:00")),
        ("A11612", kst(f"{DAY} 15:15:00")),
    ]
    assert parser.not_emitted == {"book_in_call": 2}


def test_book_in_call_with_calendar_override_follows_the_shifted_day():
    """A late open from an overrides file (not in XKRX) moves the windows the book filter uses."""
    # Arrange
    from kis_adapter.krx import parse_overrides

    overrides = parse_overrides('[[late_open]]\ndate = "2026-07-09"\nshift_minutes = 60\n')
    base = TradingCalendar.regular(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    calendar = TradingCalendar(base._sessions, base.first, base.last, overrides)
    parser = MessageParser(context=FeedContext(calendar=calendar))

    # Act
    objects = parse_all(parser, [book("083500"), book("093500"), book("163500")])

    # Assert
    assert [o.ts_event for o in objects if isinstance(o, OrderBookDepth10)] == [kst(f"{DAY} 08:35:00")]
    assert parser.not_emitted == {"book_in_call": 2}


# -- THE REGISTRY --------------------------------------------------------------------------------


def test_registry_is_immutable_and_its_specs_are_frozen():
    """SPECS cannot be changed at run time, nor can a spec (one list of TRs, built once)."""
    # Arrange
    spec = SPECS[H0ZFCNT0]

    # Act / Assert
    assert isinstance(SPECS, MappingProxyType)
    with pytest.raises(TypeError):
        SPECS["H0XXXXX0"] = spec  # type: ignore[index]
    with pytest.raises(TypeError):
        del SPECS[H0ZFCNT0]  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.tr_id = "H0XXXXX0"  # type: ignore[misc]


def test_registry_lists_every_tr_module_and_every_feed_module():
    """Each module of protocol/trs has its SPEC in SPECS, and each spec's feed is a module of feeds/."""
    # Arrange
    tr_modules = [m.name for m in pkgutil.iter_modules(trs_package.__path__) if not m.name.startswith("_")]
    feed_modules = [m.name for m in pkgutil.iter_modules(feeds_package.__path__) if m.name not in ("base",)]

    # Act
    specs = [importlib.import_module(f"kis_adapter.protocol.trs.{name}").SPEC for name in tr_modules]

    # Assert
    assert sorted(SPECS) == sorted([H0ZFANC0, H0ZFCNT0, H0ZFASP0]) == sorted(s.tr_id for s in specs)
    assert all(SPECS[s.tr_id] is s for s in specs)
    assert {s.tr_id.lower() for s in specs} == set(tr_modules) == set(feed_modules)
    assert {(tr, spec.width) for tr, spec in SPECS.items()} == {(H0ZFANC0, 8), (H0ZFCNT0, 49), (H0ZFASP0, 68)}
    for tr_id, the_feed in feeds().items():
        assert the_feed.spec is SPECS[tr_id]
        assert SPECS[tr_id].nautilus.startswith(f"kis_adapter.feeds.{tr_id.lower()}:")


def test_layout_indices_come_from_names_and_refuse_duplicates():
    """A layout is data: indices are looked up by KIS name; duplicates or a gap in a block are errors."""
    # Arrange
    layout = SPECS[H0ZFASP0].layout

    # Act / Assert
    assert (layout["ASKP1"], layout["BIDP1"], layout["BIDP_RSQN10"]) == (2, 12, 61)
    assert layout.min_fields == 62
    with pytest.raises(ValueError, match="duplicate"):
        Layout(("A", "B", "A"))
    with pytest.raises(ValueError, match="consecutive"):
        Layout(("X1", "Y", "X2")).block("X", 2)


def test_new_tr_is_one_spec_entry_and_decodes_without_touching_other_code():
    """A TR added as one TRSpec (its layout, row type, decoder) is decoded by the shared Decoder."""
    # Arrange
    from typing import NamedTuple

    class VolumeRow(NamedTuple):
        code: str
        ts_event: int
        volume: int

    layout = Layout(("FUTS_SHRN_ISCD", "BSOP_HOUR", "ACML_VOL"))

    def decode(records: list[list[str]], ts_recv: int) -> tuple[list[VolumeRow], int]:
        start = day_start(ts_recv)
        index = layout["ACML_VOL"]
        return [VolumeRow(r[0], event_time(start, r[1], ts_recv), int(r[index])) for r in records], 0

    spec = TRSpec("H0TEST00", "test", layout, VolumeRow, decode, "tests:none", ("None",))
    decoder = Decoder(specs=MappingProxyType({**SPECS, spec.tr_id: spec}))

    # Act
    decoded = decoder.decode(kst(f"{DAY} 09:00:01"), "0|H0TEST00|002|A11612^090000^7^A50612^090001^9")

    # Assert
    assert decoded.tr_id == "H0TEST00"
    assert decoded.rows == [
        VolumeRow("A11612", kst(f"{DAY} 09:00:00"), 7),
        VolumeRow("A50612", kst(f"{DAY} 09:00:01"), 9),
    ]
    assert Decoder().decode(kst(f"{DAY} 09:00:01"), "0|H0TEST00|001|A11612^090000^7").rows == []


# -- VALUES NO KRX CONTRACT HAS ------------------------------------------------------------------


def replaced(fields: list[str], tr_id: str, name: str, value: object) -> list[str]:
    """`fields` with the field `name` (KIS name of `tr_id`'s layout) set to `value`."""
    out = list(fields)
    out[SPECS[tr_id].layout[name]] = str(value)
    return out


OUT_OF_RANGE = {
    "trade price": build_data_frame(H0ZFCNT0, [trade_fields(STCK_PRPR=10**20)]),
    "trade size": build_data_frame(H0ZFCNT0, [trade_fields(LAST_CNQN=2**32)]),
    "trade volume": build_data_frame(H0ZFCNT0, [trade_fields(ACML_VOL=10**28)]),  # a 38-char trade id
    "trade change": build_data_frame(H0ZFCNT0, [trade_fields(PRDY_VRSS="9" * 400)]),  # no float holds it
    "book price": build_data_frame(H0ZFASP0, [book_fields(asks=[10**20])]),
    "book size": build_data_frame(H0ZFASP0, [replaced(book_fields(), H0ZFASP0, "ASKP_RSQN1", 10**20)]),
    "book count": build_data_frame(H0ZFASP0, [replaced(book_fields(), H0ZFASP0, "ASKP_CSNU1", 2**32)]),
    "expected quantity": f"0|{H0ZFANC0}|001|A11612^092304^75000^-100^5^-0.13^311^{10**20}",
}


@pytest.mark.parametrize("frame", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_record_with_value_out_of_any_range_is_a_counted_bad_value_live_and_in_the_catalog(frame):
    """A price, size, volume or count no field downstream can hold (NautilusTrader raises or aborts the
    process on it; int64/uint32 catalog columns overflow) is a counted bad value, never a crash."""
    # Arrange
    ts = kst(f"{DAY} 09:23:05")
    parser = MessageParser()
    decoder = Decoder()
    tr_id = frame.split("|")[1]
    columns = feed(tr_id).columns(FeedContext(calendar=default_calendar()))

    # Act
    objects = parser.parse(ts, frame)
    columns.add(decoder.decode(ts, frame).rows, ts)
    tables = list(columns.drain())

    # Assert
    assert objects == []
    assert tables == []
    assert parser.decoder.stats.skipped == decoder.stats.skipped == {"bad_value": 1}


def test_book_count_and_size_at_the_top_of_the_range_are_kept_live_and_in_the_catalog_columns():
    """2**32 - 1 (MAX_VALUE) is in range: the live depth and the catalog columns both hold it exactly
    (the book's column store must not be a signed 32-bit array, which overflows on it)."""
    # Arrange
    ts = kst(f"{DAY} 09:23:05")
    top = 2**32 - 1
    fields = replaced(replaced(book_fields(), H0ZFASP0, "ASKP_CSNU1", top), H0ZFASP0, "BIDP_RSQN2", top)
    frame = build_data_frame(H0ZFASP0, [fields])
    columns = feed(H0ZFASP0).columns(FeedContext(calendar=default_calendar()))

    # Act
    depth = MessageParser().parse(ts, frame)[0]
    columns.add(Decoder().decode(ts, frame).rows, ts)
    tables = {cls: table for _, (cls, _, table) in columns.drain()}

    # Assert
    assert (depth.ask_counts[0], depth.bids[1].size.as_double()) == (top, top)
    book = tables[OrderBookDepth10]
    assert book.column("ask_count_0").to_pylist() == [top]
    raw = int.from_bytes(book.column("bid_size_1")[0].as_py(), "little", signed=True)
    assert raw == top * 10**FIXED_PRECISION


@pytest.mark.parametrize("tr_id", [H0ZFCNT0, H0ZFASP0])
def test_columns_drained_mid_stream_keep_collecting_the_same_code_and_day(tr_id):
    """After a drain (a spill past the memory budget) the next rows of the same code and day go into
    fresh columns: the second drain holds them, nothing is appended to the columns already drained."""
    # Arrange
    fields = trade_fields() if tr_id == H0ZFCNT0 else book_fields()
    decoder = Decoder()
    columns = feed(tr_id).columns(FeedContext(calendar=default_calendar()))
    ts = kst(f"{DAY} 09:23:05")

    # Act
    columns.add(decoder.decode(ts, build_data_frame(tr_id, [fields])).rows, ts)
    first = [table.num_rows for _, (_, _, table) in columns.drain()]
    columns.add(decoder.decode(ts + 1, build_data_frame(tr_id, [fields, fields])).rows, ts + 1)
    second = [table.num_rows for _, (_, _, table) in columns.drain()]

    # Assert
    per_type = 1 if tr_id == H0ZFCNT0 else 2  # a book is a depth and a quote
    assert (first, second) == ([1] * per_type, [2] * per_type)


# -- THE CATALOG GIVES BACK WHAT THE LIVE CLIENT PUBLISHES ----------------------------------------


def test_catalog_round_trip_of_every_shape_equals_the_live_objects(tmp_path, capture_factory):
    """Trades of each aggressor, full books, books with empty levels or an empty side, out-of-order and
    in-call books: convert → a ParquetDataCatalog on disk → read back equals MessageParser's objects."""
    # Arrange
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from kis_adapter.catalog import convert_captures

    frames = [
        trade("100000", 1724, 1075, 626, 5, code="A11612"),
        trade("100001", 1729, 1075, 631, 5, code="A11612"),
        trade("100002", 1732, 1078, 631, 3, code="A11612"),
        trade("100003", 1742, 1078, 631, 10, code="A11612"),
        book("100000", code="A11612"),
        book("100001", code="A11612", asks=[79700, 79800, 79900]),
        book("100002", code="A11612", asks=[]),
        book("100003", code="A11612", bids=[79500]),
        book("100004", code="A11612", asks=[79800, 79700]),  # out of order: neither live nor in the catalog
        book("084000", code="A11612"),  # in the pre-open call: neither
    ]
    messages = []
    for frame in frames:
        hhmmss = frame.split("|", 3)[3].split("^")[1]
        messages.append((kst(f"{DAY} {hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}") + 10**9, frame))
    messages.sort()
    parser = MessageParser()
    live = [obj for ts, frame in messages for obj in parser.parse(ts, frame)]
    capture = capture_factory(messages)

    # Act
    report = convert_captures([capture], tmp_path / "catalog")
    catalog = ParquetDataCatalog(str(tmp_path / "catalog"))
    stored = [*catalog.trade_ticks(), *catalog.order_book_depth10(), *catalog.quote_ticks()]

    # Assert
    def key(obj) -> tuple:
        return (type(obj).__name__, obj.ts_init, obj.ts_event)

    def as_dicts(objects) -> list[dict]:
        return [{"type": type(o).__name__, **type(o).to_dict(o)} for o in sorted(objects, key=key)]

    assert [type(o).__name__ for o in live].count("OrderBookDepth10") == 4
    assert [type(o).__name__ for o in live].count("QuoteTick") == 3  # not the book without asks
    assert as_dicts(stored) == as_dicts(live)
    assert report.not_emitted == parser.not_emitted == {"book_out_of_order": 1, "book_in_call": 1}
