"""KRXAuctionModule on a real BacktestEngine: KRX single-price auctions, both calls, halts, refusals."""

from __future__ import annotations

import datetime as dt

from auction_helpers import CODE
from auction_helpers import IID
from auction_helpers import NEXT_DAY
from auction_helpers import Market
from auction_helpers import Step
from auction_helpers import at
from auction_helpers import book
from auction_helpers import expected
from auction_helpers import trade
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from kis_adapter.auction import KRXAuctionModuleConfig

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def pre_open_call(final: int = 80_000, quantity: int = 23) -> list:
    """Expected fills through the pre-open call, the last one at its end (08:45:00)."""
    return [
        expected(at("08:30:05"), 79_500, 10),
        expected(at("08:40"), final, quantity - 3),
        expected(at("08:44:30"), final, quantity),
        expected(at("08:45"), final, quantity),
    ]


def opening(print_price: int = 80_000, size: int = 23) -> list:
    """The opening print at 08:45:00, then continuous trading: books and trades around 80,100."""
    return [
        trade(at("08:45"), print_price, size),
        book(at("08:45:01"), 80_000, 80_100),
        trade(at("08:45:05"), 80_100, 5, AggressorSide.BUYER),
        book(at("08:46"), 80_100, 80_200),
        trade(at("08:46:30"), 80_200, 40, AggressorSide.BUYER),
    ]


def test_orders_crossing_the_opening_print_fill_at_the_print_price():
    """BUY ≥ print, SELL ≤ print and MARKET orders of the pre-open call fill at the print, not their limit."""
    # Arrange
    market = Market(
        expected=pre_open_call(quantity=100),
        data=opening(size=100),
        steps=[
            Step(at("08:40"), BUY, 3, 81_000, "buy-above"),
            Step(at("08:40"), SELL, 4, 79_000, "sell-below"),
            Step(at("08:40"), BUY, 5, None, "market-buy"),
            Step(at("08:44:30"), SELL, 6, None, "market-sell"),
        ],
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    assert [(tag, side, qty, px) for tag, side, qty, px, _ in strategy.fills] == [
        ("buy-above", "BUY", 3, 80_000),
        ("sell-below", "SELL", 4, 80_000),
        ("market-buy", "BUY", 5, 80_000),
        ("market-sell", "SELL", 6, 80_000),
    ]
    assert {ts for *_, ts in strategy.fills} == {at("08:45") + 5}  # filled on the print, nothing earlier
    assert [f.kind for f in module.auction_fills] == ["pre_open"] * 4


def test_limits_on_the_wrong_side_of_the_print_do_not_fill_at_it():
    """A BUY below the print or a SELL above it stays working through the print."""
    # Arrange
    market = Market(
        expected=pre_open_call(),
        data=opening(),
        steps=[
            Step(at("08:40"), BUY, 2, 79_900, "buy-below"),
            Step(at("08:40"), SELL, 2, 80_500, "sell-above"),
        ],
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    assert module.auction_fills == []
    assert strategy.status("buy-below") == "ACCEPTED"
    assert [f[0] for f in strategy.fills] == []  # the later market (80,100-80,200) crosses neither


def test_auction_fills_stop_at_the_print_size_in_submission_order():
    """Print of 23: 10 + 13 of the first two buys; the rest stays working, fills in continuous trading."""
    # Arrange
    market = Market(
        expected=pre_open_call(quantity=23),
        data=opening(size=23),
        steps=[
            Step(at("08:40"), BUY, 10, 81_000, "first"),
            Step(at("08:40"), BUY, 20, 80_500, "second"),
            Step(at("08:44:30"), BUY, 5, None, "third"),
        ],
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    at_print = [(tag, qty, px) for tag, _, qty, px, ts in strategy.fills if ts == at("08:45") + 5]
    assert at_print == [("first", 10, 80_000), ("second", 13, 80_000)]
    later = [(tag, qty, px) for tag, _, qty, px, ts in strategy.fills if ts > at("08:45") + 5]
    assert later and all(px > 80_000 for _, _, px in later)  # the rest fills against the continuous book
    assert sum(f.quantity for f in module.auction_fills) == 23


def test_nothing_fills_during_the_call_even_against_yesterdays_crossed_book():
    """Day 2's pre-open orders cross day 1's last book: no fill before day 2's print, then fill at it."""
    # Arrange
    day1 = [book(at("09:10"), 80_000, 80_100), trade(at("09:10:01"), 80_100, 3, AggressorSide.BUYER)]
    day2_expected = [
        expected(at("08:31", NEXT_DAY), 79_000, 5),
        expected(at("08:44", NEXT_DAY), 79_200, 30),
        expected(at("08:45", NEXT_DAY), 79_200, 30),
    ]
    market = Market(
        expected=day2_expected,
        data=[
            *day1,
            trade(at("08:45", NEXT_DAY), 79_200, 30),
            book(at("08:45:02", NEXT_DAY), 79_100, 79_200),
        ],
        steps=[
            Step(at("08:35", NEXT_DAY), SELL, 2, 79_500, "sell-into-stale-bid"),  # 80,000 bid is yesterday's
            Step(at("08:44", NEXT_DAY), BUY, 2, 80_100, "buy-into-stale-ask"),
        ],
    )

    # Act
    strategy, _, _ = market.run()

    # Assert
    assert [(tag, qty, px, ts) for tag, _, qty, px, ts in strategy.fills] == [
        ("buy-into-stale-ask", 2, 79_200, at("08:45", NEXT_DAY) + 5)
    ]  # the SELL at 79,500 is above the 79,200 print: it waits; nothing filled at 80,000 or 80,100
    assert strategy.status("sell-into-stale-bid") == "ACCEPTED"


def test_closing_call_orders_fill_only_at_the_closing_print():
    """Orders of 15:35-15:45 do not touch the 15:34 book; resting ones join the closing auction too."""
    # Arrange
    afternoon = [book(at("15:34:50"), 81_000, 81_100), trade(at("15:34:55"), 81_100, 2, AggressorSide.BUYER)]
    closing = [expected(at("15:35:10"), 81_200, 40), expected(at("15:44:50"), 81_300, 60)]
    market = Market(
        expected=closing,
        data=[*afternoon, trade(at("15:45"), 81_300, 60)],
        steps=[
            Step(at("15:34:50"), SELL, 3, 81_200, "resting-sell"),  # above the bid: rests into the call
            Step(at("15:35:10"), BUY, 4, 81_500, "call-buy"),  # crosses the stale 81,100 ask: must not fill
            Step(at("15:44:50"), SELL, 1, None, "call-market-sell"),
        ],
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    assert sorted((tag, qty, px) for tag, _, qty, px, _ in strategy.fills) == [
        ("call-buy", 4, 81_300),
        ("call-market-sell", 1, 81_300),
        ("resting-sell", 3, 81_300),
    ]
    assert {ts for *_, ts in strategy.fills} == {at("15:45") + 5}
    assert {f.kind for f in module.auction_fills} == {"closing"}


def test_halt_auction_from_expected_prices_fills_at_its_print():
    """Expected prices at 11:00 (outside both calls) mean a halt auction: orders wait for the next trade."""
    # Arrange
    market = Market(
        expected=[expected(at("11:00:05"), 80_600, 10), expected(at("11:01"), 80_700, 12)],
        data=[
            book(at("10:59"), 80_400, 80_500),
            trade(at("10:59:30"), 80_500, 1, AggressorSide.BUYER),
            trade(at("11:02"), 80_700, 12),
        ],
        steps=[Step(at("11:00:05"), BUY, 2, 80_900, "halt-buy")],  # would cross the 10:59 book's 80,500 ask
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    assert [(tag, qty, px) for tag, _, qty, px, _ in strategy.fills] == [("halt-buy", 2, 80_700)]
    assert [f.kind for f in module.auction_fills] == ["halt"]


def test_a_call_decided_by_market_time_not_by_receive_time():
    """An expected fill stamped 08:44:59 but received after 08:45 still holds orders for the print."""
    # Arrange
    late = expected(at("08:44:59"), 80_000, 23)
    late.data._ts_init = at("08:45:03")  # received late: the receive clock is past the call's end
    market = Market(
        expected=[expected(at("08:40"), 80_000, 10), late],
        data=[
            book(at("08:44:58"), 79_900, 80_000),
            trade(at("08:45:04"), 80_000, 23),
            book(at("08:46"), 80_000, 80_100),
        ],
        steps=[Step(at("08:44:59"), BUY, 1, 80_000, "late-call-buy")],
    )
    market.data[0] = book(at("08:29"), 79_900, 80_000)  # the last book before the call

    # Act
    strategy, module, _ = market.run()

    # Assert
    assert [(tag, qty, px, ts) for tag, _, qty, px, ts in strategy.fills] == [
        ("late-call-buy", 1, 80_000, at("08:45:04") + 5)
    ]
    assert [f.kind for f in module.auction_fills] == ["pre_open"]


def test_a_held_order_can_be_canceled_before_the_print():
    """Canceling during the call takes the order out of the auction."""
    # Arrange
    market = Market(
        expected=pre_open_call(),
        data=opening(),
        steps=[
            Step(at("08:40"), BUY, 2, 81_000, "kept"),
            Step(at("08:40"), BUY, 3, 81_000, "canceled"),
            Step(at("08:44:30"), cancel="canceled"),
        ],
    )

    # Act
    strategy, _, _ = market.run()

    # Assert
    assert [(tag, qty) for tag, _, qty, *_ in strategy.fills] == [("kept", 2)]
    assert strategy.status("canceled") == "CANCELED"


def test_orders_krx_would_refuse_are_rejected_with_a_reason():
    """Off-ladder price, over 1,000 contracts: rejected with the reason, the run goes on."""
    # Arrange
    market = Market(
        expected=pre_open_call(),
        data=opening(),
        steps=[
            Step(at("08:40"), BUY, 1, 80_050, "off-tick"),
            Step(at("08:40"), BUY, 1_001, 81_000, "too-big"),
            Step(at("08:40"), BUY, 1, 81_000, "fine"),
        ],
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    assert strategy.status("off-tick") == "REJECTED" and "tick ladder" in strategy.reasons["off-tick"]
    assert "80,000 or 80,100" in strategy.reasons["off-tick"]
    assert strategy.status("too-big") == "REJECTED" and "1,000" in strategy.reasons["too-big"]
    assert [tag for tag, *_ in strategy.fills] == ["fine"]
    assert len(module.rejected) == 2


def test_every_fill_pays_the_commission_rate_on_notional():
    """0.003 % of 80,000 × 10 × 3 = 72 KRW for an auction fill of 3 contracts."""
    # Arrange
    market = Market(
        expected=pre_open_call(),
        data=opening(),
        steps=[Step(at("08:40"), BUY, 3, 81_000, "buy")],
        module=KRXAuctionModuleConfig(commission_rate=0.00003),
    )

    # Act
    _, _, engine = market.run()

    # Assert
    fills = engine.trader.generate_fills_report()
    assert list(fills["commission"]) == ["72 KRW"]


def test_continuous_trading_matches_as_nautilus_does():
    """Outside the calls a MARKET order fills at once against the book (no auction, no hold)."""
    # Arrange
    market = Market(
        data=[book(at("10:00"), 80_000, 80_100), trade(at("10:00:01"), 80_100, 3, AggressorSide.BUYER)],
        steps=[Step(at("10:00"), BUY, 2, None, "market-buy")],
        book_type=BookType.L2_MBP,
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    assert [(tag, qty, px) for tag, _, qty, px, _ in strategy.fills] == [("market-buy", 2, 80_100)]
    assert module.auction_fills == []
    assert IID.venue.value == "KRX"


def test_opening_auction_on_an_l1_venue_with_trades_only():
    """Without books (an L1 venue fed by trades), the print still fills the call's orders at its price."""
    # Arrange
    market = Market(
        expected=pre_open_call(quantity=30),
        data=[
            trade(at("08:45"), 80_000, 30),
            trade(at("08:45:05"), 80_100, 5, AggressorSide.BUYER),
            trade(at("08:45:09"), 79_900, 5, AggressorSide.SELLER),
        ],
        steps=[Step(at("08:40"), BUY, 2, 80_500, "buy"), Step(at("08:40"), SELL, 2, 80_200, "sell-above")],
        book_type=BookType.L1_MBP,
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    assert [(tag, qty, px) for tag, _, qty, px, _ in strategy.fills][:1] == [("buy", 2, 80_000)]
    assert ("sell-above", 2, 80_000) not in [(tag, qty, px) for tag, _, qty, px, _ in strategy.fills]
    assert [f.kind for f in module.auction_fills] == ["pre_open"]


def test_an_order_for_a_contract_without_data_is_rejected_and_the_run_goes_on():
    """A contract the venue has no data of: rejected with the reason; the other contract's order fills."""
    # Arrange
    other = InstrumentId.from_str("A50612.KRX")
    market = Market(
        codes=(CODE, "A50612"),
        expected=pre_open_call(),
        data=opening(),
        steps=[
            Step(at("08:40"), BUY, 1, 81_000, "no-data-limit", iid=other),
            Step(at("08:40"), BUY, 1, None, "no-data-market", iid=other),
            Step(at("08:40"), BUY, 1, 81_000, "fine"),
        ],
    )

    # Act
    strategy, module, _ = market.run()

    # Assert
    for tag in ("no-data-limit", "no-data-market"):
        assert strategy.status(tag) == "REJECTED"
        assert strategy.reasons[tag].startswith("no market data for A50612.KRX yet")
    assert [(tag, px) for tag, _, _, px, _ in strategy.fills] == [("fine", 80_000)]
    assert len(module.rejected) == 2


def test_an_order_after_the_contract_expired_is_rejected_by_market_time():
    """A11612 (December 2026) expires 2026-12-10 15:20 KST: an order on data of the 11th is rejected."""
    # Arrange
    day = dt.date(2026, 12, 11)
    market = Market(
        data=[book(at("09:00", day), 79_900, 80_000), trade(at("09:00:01", day), 80_000, 3)],
        steps=[Step(at("09:00:01", day), BUY, 1, 80_000, "late")],
    )

    # Act
    strategy, _, _ = market.run()

    # Assert
    assert strategy.status("late") == "REJECTED"
    assert "expired at 2026-12-10 15:20 KST" in strategy.reasons["late"]
    assert strategy.fills == []
