"""
The trading part of a backtest report: fills, positions, realised PnL, commissions, equity (KRW).

Pure functions from NautilusTrader's report rows (``generate_fills_report()``,
``generate_positions_report()``, ``generate_account_report()`` as records, or plain dicts of the
same shape) to the rows this project prints and saves, so they are tested without a backtest.

Realised PnL per contract and KST day comes from a ledger of the fills (average cost per
instrument and strategy, as NautilusTrader's NETTING positions count it): a closing fill realises
``(price - average open) × quantity × multiplier`` on its own KST day, every fill's commission is
charged on its day, and realised PnL is that gross PnL minus commissions. The positions'
own ``realized_pnl`` must add up to the same total; the summary says so when it does not.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

from kis_adapter.errors import KISError
from kis_adapter.krx import MULTIPLIER
from kis_adapter.krx import kst_date
from kis_adapter.krx import kst_datetime
from kis_adapter.report import format_table
from kis_adapter.report import write_csv

Record = Mapping[str, Any]

FILL_COLUMNS: Final = (
    "time_kst",
    "instrument_id",
    "side",
    "quantity",
    "price",
    "notional",
    "commission",
    "liquidity_side",
    "strategy_id",
    "order_id",
    "trade_id",
    "position_id",
    "ts_event",
)
POSITION_COLUMNS: Final = (
    "instrument_id",
    "side",
    "quantity",
    "opened_kst",
    "closed_kst",
    "avg_open",
    "avg_close",
    "realized_pnl",
    "commissions",
    "status",
    "strategy_id",
    "position_id",
    "ts_opened",
    "ts_closed",
)
PNL_COLUMNS: Final = (
    "date_kst",
    "instrument_id",
    "fills",
    "bought",
    "sold",
    "gross_pnl",
    "commissions",
    "realized_pnl",
)
EQUITY_COLUMNS: Final = ("time_kst", "balance", "unrealized_pnl", "equity", "reason", "ts_event")
_RAW: Final = {"ts_event", "ts_opened", "ts_closed", "position_id", "order_id", "trade_id"}  # CSV only

# The files `write_trading_tables` writes (each run removes them first: no table of an earlier run stays).
TABLE_STEMS: Final = ("fills", "positions", "pnl", "equity")
TRADING_FILES: Final = tuple(f"{stem}.{ext}" for stem in TABLE_STEMS for ext in ("csv", "txt"))


# -- VALUES --------------------------------------------------------------------------------------


def _ns(value: Any) -> int | None:
    """A timestamp cell (int ns, pandas Timestamp, datetime, NaT/None) as UTC ns."""
    try:
        if value is None or bool(value != value):  # None, NaT, NaN
            return None
    except TypeError:  # pandas.NA (an open position's ts_closed) has no truth value
        return None
    if isinstance(value, int):
        return value
    ns = getattr(value, "value", None)  # pandas Timestamp
    if isinstance(ns, int):
        return ns
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1_000_000) * 1000
    return None


def _number(value: Any) -> float | None:
    """A numeric cell ("2", "99700", 1.0, Quantity, Price) as float; None for missing/NaN."""
    if value is None:
        return None
    if hasattr(value, "as_double"):
        return value.as_double()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def money_amount(value: Any) -> float:
    """A money cell (``"300 KRW"``, `Money`, a list of them, a number) as its amount; 0 when missing."""
    if value is None:
        return 0.0
    if isinstance(value, list | tuple):
        return sum(money_amount(v) for v in value)
    if hasattr(value, "as_double"):
        return value.as_double()
    if isinstance(value, str):
        amount = value.strip().split(" ")[0].replace(",", "")
        return _number(amount) or 0.0
    return _number(value) or 0.0


def _whole(value: float | None) -> int | float | None:
    """Whole numbers as int (quantities print without decimals)."""
    return int(value) if value is not None and float(value).is_integer() else value


def kst_text(ts: int | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS.mmm`` KST of a UTC ns timestamp."""
    if ts is None:
        return None
    return kst_datetime(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def records(frame: Any) -> list[dict[str, Any]]:
    """A NautilusTrader report DataFrame (or None/empty) as records, its index as a column."""
    if frame is None or len(frame) == 0:
        return []
    return frame.reset_index(names=frame.index.name or "index").to_dict("records")


# -- ROWS ----------------------------------------------------------------------------------------


def fill_rows(
    fills: Iterable[Record], multipliers: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """One row per fill event, in time order: KST time, side, quantity, price, notional, commission."""
    multipliers = multipliers or {}
    rows = []
    for fill in fills:
        instrument_id = str(fill["instrument_id"])
        quantity = _number(fill.get("last_qty")) or 0.0
        price = _number(fill.get("last_px")) or 0.0
        ts = _ns(fill.get("ts_event"))
        multiplier = multipliers.get(instrument_id, MULTIPLIER)
        rows.append(
            {
                "time_kst": kst_text(ts),
                "instrument_id": instrument_id,
                "side": str(fill.get("order_side")),
                "quantity": _whole(quantity),
                "price": price,
                "notional": price * quantity * multiplier,
                "commission": money_amount(fill.get("commission")),
                "liquidity_side": str(fill.get("liquidity_side")),
                "strategy_id": str(fill.get("strategy_id")),
                "order_id": str(fill.get("client_order_id", fill.get("index", ""))),
                "trade_id": str(fill.get("trade_id")),
                "position_id": str(fill.get("position_id")),
                "ts_event": ts,
            }
        )
    rows.sort(key=lambda r: (r["ts_event"] or 0, r["instrument_id"]))
    return rows


_ENTRY_SIDE: Final = {"BUY": "LONG", "SELL": "SHORT"}


def position_rows(positions: Iterable[Record]) -> list[dict[str, Any]]:
    """One row per position (closed NETTING cycles are NautilusTrader's snapshots), by open time."""
    rows = []
    for position in positions:
        opened, closed = _ns(position.get("ts_opened")), _ns(position.get("ts_closed"))
        is_open = str(position.get("side")) != "FLAT"
        rows.append(
            {
                "instrument_id": str(position["instrument_id"]),
                "side": _ENTRY_SIDE.get(str(position.get("entry")), str(position.get("entry"))),
                "quantity": _whole(_number(position.get("peak_qty"))),
                "opened_kst": kst_text(opened),
                "closed_kst": None if is_open else kst_text(closed),
                "avg_open": _number(position.get("avg_px_open")),
                "avg_close": None if is_open else _number(position.get("avg_px_close")),
                "realized_pnl": money_amount(position.get("realized_pnl")),
                "commissions": money_amount(position.get("commissions")),
                "status": "open" if is_open else "closed",
                "strategy_id": str(position.get("strategy_id")),
                "position_id": str(position.get("position_id", position.get("index", ""))),
                "ts_opened": opened,
                "ts_closed": None if is_open else closed,
            }
        )
    rows.sort(key=lambda r: (r["ts_opened"] or 0, r["instrument_id"]))
    return rows


@dataclass(slots=True)
class _Book:
    """A running NETTING position: signed quantity and average open price."""

    quantity: float = 0.0
    average: float = 0.0


def pnl_rows(fills: Sequence[Record], multipliers: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """
    Realised PnL per KST day and contract from `fill_rows` (see the module docstring): fills,
    contracts bought and sold, gross PnL, commissions and realised PnL (gross minus commissions).
    """
    multipliers = multipliers or {}
    books: dict[tuple[str, str], _Book] = {}
    days: dict[tuple[str, str], dict[str, Any]] = {}
    for fill in sorted(fills, key=lambda r: r["ts_event"] or 0):
        instrument_id = fill["instrument_id"]
        book = books.setdefault((instrument_id, fill.get("strategy_id", "")), _Book())
        date = kst_date(fill["ts_event"]).isoformat()
        row = days.setdefault(
            (date, instrument_id),
            {
                "date_kst": date,
                "instrument_id": instrument_id,
                "fills": 0,
                "bought": 0,
                "sold": 0,
                "gross_pnl": 0.0,
                "commissions": 0.0,
                "realized_pnl": 0.0,
            },
        )
        sign = 1.0 if fill["side"] == "BUY" else -1.0
        quantity, price = float(fill["quantity"]), float(fill["price"])
        row["fills"] += 1
        row["bought" if sign > 0 else "sold"] += _whole(quantity)
        row["commissions"] += fill["commission"]
        row["gross_pnl"] += _apply(book, sign, quantity, price) * multipliers.get(instrument_id, MULTIPLIER)
    out = [days[key] for key in sorted(days)]
    for row in out:
        row["realized_pnl"] = row["gross_pnl"] - row["commissions"]
    return out


def _apply(book: _Book, sign: float, quantity: float, price: float) -> float:
    """Apply one fill to `book`; return the price PnL it realises per unit of multiplier."""
    held = book.quantity
    if held == 0 or (held > 0) == (sign > 0):  # opening or adding: a new average
        total = abs(held) + quantity
        book.average = (book.average * abs(held) + price * quantity) / total
        book.quantity = held + sign * quantity
        return 0.0
    closing = min(quantity, abs(held))
    realised = (price - book.average) * closing * (1.0 if held > 0 else -1.0)
    book.quantity = held + sign * quantity
    if book.quantity == 0:
        book.average = 0.0
    elif (book.quantity > 0) != (held > 0):  # flipped: the rest opens at this price
        book.average = price
    return realised


def contract_totals(pnl: Iterable[Record]) -> list[dict[str, Any]]:
    """`pnl_rows` summed per contract over all days."""
    totals: dict[str, dict[str, Any]] = {}
    for row in pnl:
        total = totals.setdefault(
            row["instrument_id"],
            {"instrument_id": row["instrument_id"], "fills": 0, "commissions": 0.0, "realized_pnl": 0.0},
        )
        for key in ("fills", "commissions", "realized_pnl"):
            total[key] += row[key]
    return [totals[key] for key in sorted(totals)]


def day_totals(pnl: Iterable[Record]) -> list[dict[str, Any]]:
    """`pnl_rows` summed per KST day over all contracts."""
    totals: dict[str, dict[str, Any]] = {}
    for row in pnl:
        total = totals.setdefault(
            row["date_kst"],
            {"date_kst": row["date_kst"], "fills": 0, "commissions": 0.0, "realized_pnl": 0.0},
        )
        for key in ("fills", "commissions", "realized_pnl"):
            total[key] += row[key]
    return [totals[key] for key in sorted(totals)]


def equity_rows(samples: Iterable[Any], account: Iterable[Record] = ()) -> list[dict[str, Any]]:
    """
    The equity curve: the observer's samples (balance, equity, reason), or, without them, the
    account's balance at each account state (equity unknown). Repeated identical points are dropped.
    """
    rows = []
    for sample in samples:
        rows.append(
            {
                "time_kst": kst_text(sample.ts_event),
                "balance": sample.balance,
                "unrealized_pnl": sample.equity - sample.balance,
                "equity": sample.equity,
                "reason": sample.reason,
                "ts_event": sample.ts_event,
            }
        )
    if not rows:
        for state in account:
            ts = _ns(state.get("index", state.get("ts_event")))
            balance = money_amount(state.get("total"))
            rows.append(
                {
                    "time_kst": kst_text(ts),
                    "balance": balance,
                    "unrealized_pnl": None,
                    "equity": None,
                    "reason": "account",
                    "ts_event": ts,
                }
            )
    rows.sort(key=lambda r: r["ts_event"] or 0)
    out: list[dict[str, Any]] = []
    for row in rows:
        if out and all(out[-1][k] == row[k] for k in ("ts_event", "balance", "equity")):
            continue
        out.append(row)
    return out


# -- THE REPORT ----------------------------------------------------------------------------------


@dataclass(slots=True)
class TradingReport:
    """Everything the trading section shows, as rows (see `build_trading_report`)."""

    venue: str
    orders: Counter[str] = field(default_factory=Counter)  # order status → count
    fills: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    pnl: list[dict[str, Any]] = field(default_factory=list)
    equity: list[dict[str, Any]] = field(default_factory=list)
    starting_balance: float | None = None
    ending_balance: float | None = None
    prints: list[Any] = field(default_factory=list)  # AuctionPrint of kis_adapter.trading_observer
    tearsheet_html: str | None = None
    tearsheet_problem: str | None = None  # why there is no tearsheet

    @property
    def realized_pnl(self) -> float:
        return sum(r["realized_pnl"] for r in self.pnl)

    @property
    def commissions(self) -> float:
        return sum(r["commissions"] for r in self.pnl)

    @property
    def positions_pnl(self) -> float:
        """NautilusTrader's own count: the sum of the positions' realised PnL."""
        return sum(r["realized_pnl"] for r in self.positions)


def build_trading_report(
    venue: str,
    *,
    fills: Iterable[Record] = (),
    positions: Iterable[Record] = (),
    account: Iterable[Record] = (),
    order_statuses: Iterable[str] = (),
    multipliers: Mapping[str, float] | None = None,
    samples: Sequence[Any] = (),
    prints: Sequence[Any] = (),
) -> TradingReport:
    """The trading report of one run from NautilusTrader's report records and the observer's data."""
    account = list(account)
    balances = [money_amount(state.get("total")) for state in account]
    fill_table = fill_rows(fills, multipliers)
    return TradingReport(
        venue=venue,
        orders=Counter(str(status) for status in order_statuses),
        fills=fill_table,
        positions=position_rows(positions),
        pnl=pnl_rows(fill_table, multipliers),
        equity=equity_rows(samples, account),
        starting_balance=balances[0] if balances else None,
        ending_balance=balances[-1] if balances else None,
        prints=list(prints),
    )


# -- TEXT AND FILES ------------------------------------------------------------------------------


def krw(amount: float) -> str:
    """``-740,400 KRW``: whole won with thousands separators."""
    return f"{amount:,.0f} KRW"


def format_trading(report: TradingReport | None) -> str:
    """The trading section of the printed summary; one line when there is nothing to report."""
    if report is None:
        return "Trading: no simulated venue in this run (the catalog has no FuturesContract with trades)"
    total = sum(report.orders.values())
    if not total:
        return f"Trading (venue {report.venue}): no orders submitted"
    statuses = ", ".join(f"{n} {status.lower()}" for status, n in sorted(report.orders.items()))
    still_open = sum(1 for p in report.positions if p["status"] == "open")
    lines = [
        f"Trading (venue {report.venue}): {total} orders ({statuses}), {len(report.fills)} fills, "
        f"{len(report.positions)} positions ({still_open} open at the end)"
    ]
    if not report.fills:
        return "\n".join(lines)
    lines.append(f"Realised PnL: {krw(report.realized_pnl)} total, commissions {krw(report.commissions)}")
    contracts = contract_totals(report.pnl)
    width = max(len(r["instrument_id"]) for r in contracts)
    pnl_width = max(len(krw(r["realized_pnl"])) for r in contracts)
    for row in contracts:
        pnl = krw(row["realized_pnl"])
        lines.append(
            f"  {row['instrument_id']:<{width}}  {_fills(row['fills'])}  {pnl:>{pnl_width}}"
            f"  (commissions {krw(row['commissions'])})"
        )
    days = day_totals(report.pnl)
    if len(days) > 1:
        for row in days:
            lines.append(f"  {row['date_kst']}  {_fills(row['fills'])}  {krw(row['realized_pnl'])}")
    if abs(report.positions_pnl - report.realized_pnl) >= 1.0:
        lines.append(
            f"Note: the positions' realised PnL adds up to {krw(report.positions_pnl)}, "
            f"the fills to {krw(report.realized_pnl)}"
        )
    if report.starting_balance is not None and report.ending_balance is not None:
        lines.append(f"Balance: {krw(report.starting_balance)} → {krw(report.ending_balance)}")
    if report.equity and report.equity[-1]["unrealized_pnl"]:
        last = report.equity[-1]
        lines.append(
            f"Unrealised PnL at the end: {krw(last['unrealized_pnl'])} (equity {krw(last['equity'])})"
        )
    return "\n".join(lines)


def _fills(n: int) -> str:
    """``"   2 fills"`` / ``"   1 fill "``: aligned in a column either way."""
    return f"{n:>4} fills" if n != 1 else f"{n:>4} fill "


def clear_trading_tables(directory: Path) -> None:
    """Remove the tables an earlier run wrote here (only those files)."""
    for name in TRADING_FILES:
        path = directory / name
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise KISError(f"cannot remove {path} of an earlier report: {exc.strerror or exc}") from None


def write_trading_tables(report: TradingReport | None, directory: Path) -> list[Path]:
    """
    Write fills, positions, pnl (per KST day and contract) and equity as ``.csv`` (every column,
    full precision) and aligned ``.txt`` (without the raw ids and ns timestamps); nothing when
    there were no fills.
    """
    clear_trading_tables(directory)
    if report is None or not report.fills:
        return []
    files: list[Path] = []
    for stem, rows, columns in (
        ("fills", report.fills, FILL_COLUMNS),
        ("positions", report.positions, POSITION_COLUMNS),
        ("pnl", report.pnl, PNL_COLUMNS),
        ("equity", report.equity, EQUITY_COLUMNS),
    ):
        files.append(write_csv(rows, directory / f"{stem}.csv", columns))
        text = directory / f"{stem}.txt"
        try:
            text.write_text(
                format_table(rows, [c for c in columns if c not in _RAW]) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            raise KISError(f"cannot write {text}: {exc.strerror or exc}") from None
        files.append(text)
    return files
