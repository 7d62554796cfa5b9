"""
Backtest and strategy reports: aligned text tables, CSV files, and the auction chart (PNG).

Tables take rows as dicts (one per line, keys = columns), the shape strategies return from
``summary()``, so any strategy's results print and save the same way. matplotlib is imported only
when a chart is drawn (Agg back end: no display needed).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import textwrap
from collections import Counter
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from dataclasses import is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from kis_adapter.errors import KISError
from kis_adapter.protocol.values import DAY_NS
from kis_adapter.protocol.values import KST_OFFSET_NS
from kis_adapter.protocol.values import NS_PER_SECOND

Row = Mapping[str, Any]


def as_row(obj: Any) -> dict[str, Any]:
    """A dataclass (e.g. a `Decision`) or mapping as a plain row dict."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in fields(obj)}
    raise TypeError(f"cannot tabulate {type(obj).__name__}")


def _columns(rows: Sequence[Row], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def format_cell(value: Any, decimals: int = 2) -> str:
    """Human form: ``-`` for missing, floats with thousands separators and `decimals` places."""
    if value is None:
        return "-"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:,.{decimals}f}"
    return str(value)


def _decimals(values: list[Any]) -> int:
    """0 for a column of whole numbers (prices in KRW), else 2 (percentages)."""
    floats = [v for v in values if isinstance(v, float) and not math.isnan(v)]
    return 0 if all(v.is_integer() for v in floats) else 2


def format_table(rows: Iterable[Row], columns: Sequence[str] | None = None) -> str:
    """Rows as an aligned plain-text table (numbers right-aligned), or ``(no rows)``."""
    rows = [as_row(r) for r in rows]
    if not rows:
        return "(no rows)"
    cols = _columns(rows, columns)
    decimals = {c: _decimals([row.get(c) for row in rows]) for c in cols}
    cells = [[format_cell(row.get(c), decimals[c]) for c in cols] for row in rows]
    numeric = [
        all(isinstance(row.get(c), int | float) or row.get(c) is None for row in rows)
        and not all(row.get(c) is None for row in rows)
        for c in cols
    ]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(cols), line(["-" * w for w in widths])]
    out.extend(line(values) for values in cells)
    return "\n".join(out)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return value.value
    return str(value) if not isinstance(value, int | float | str) else value


def write_csv(
    rows: Iterable[Row], path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> Path:
    """Write rows as CSV (full precision, empty cell for missing) and return the path."""
    rows = [as_row(r) for r in rows]
    path = Path(path)
    cols = _columns(rows, columns)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(cols)
            for row in rows:
                writer.writerow([_csv_value(row.get(c)) for c in cols])
    except OSError as exc:
        raise KISError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def write_table(
    rows: Iterable[Row], directory: str | os.PathLike[str], stem: str, columns: Sequence[str] | None = None
) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and the aligned ``<stem>.txt`` into `directory`; return both paths."""
    rows = [as_row(r) for r in rows]
    directory = Path(directory)
    csv_path = write_csv(rows, directory / f"{stem}.csv", columns)
    txt_path = directory / f"{stem}.txt"
    try:
        txt_path.write_text(format_table(rows, columns) + "\n", encoding="utf-8")
    except OSError as exc:
        raise KISError(f"cannot write {txt_path}: {exc.strerror or exc}") from None
    return csv_path, txt_path


# -- CHART ---------------------------------------------------------------------------------------

_GAP_NS = 10 * 60 * NS_PER_SECOND  # a silence this long separates two intraday auctions
_PRE_OPEN_UNTIL = 9 * 3600  # KST seconds: earlier auctions are pre-open calls
_CLOSING_FROM = 15 * 3600 + 30 * 60  # later ones closing calls; in between, e.g. halt auctions
_SLOT_ORDER = {"pre-open call": 0, "intraday call": 1, "closing call": 2}
_TITLE_CHARS_PER_INCH = 8.0  # 14 pt bold DejaVu Sans, with a margin

Point = tuple[int, float, int, float]  # (ts_event, price, quantity, prev_close)


@dataclass(frozen=True, slots=True)
class Marker:
    """A decision to mark on the chart: `side` is LONG, SHORT or FLAT."""

    instrument_id: str
    ts_event: int
    side: str
    price: float


@dataclass(slots=True)
class AuctionSeries:
    """One auction of one contract: its updates as parallel columns."""

    instrument_id: str
    ts: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    quantity: list[int] = field(default_factory=list)
    prev_close: list[float] = field(default_factory=list)  # price - change; 0.0 where price is 0.0

    @property
    def day(self) -> int:
        return (self.ts[0] + KST_OFFSET_NS) // DAY_NS

    @property
    def label(self) -> str:
        return _label(_kst_secs(self.ts[0]))


def _label(seconds: int) -> str:
    if seconds < _PRE_OPEN_UNTIL:
        return "pre-open call"
    return "closing call" if seconds >= _CLOSING_FROM else "intraday call"


def _kst_secs(ts: int) -> int:
    return (ts + KST_OFFSET_NS) % DAY_NS // NS_PER_SECOND


def kst_clock(ts: int) -> str:
    """``HH:MM:SS`` KST of a UTC ns timestamp."""
    s = _kst_secs(ts)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def split_auctions(points: Mapping[str, Sequence[Point]]) -> dict[str, list[AuctionSeries]]:
    """
    Cut each contract's points into auctions: per KST day, pre-open / intraday / closing by time of
    day (the chart has no phase codes), intraday runs further cut at silences over 10 minutes.
    """
    out: dict[str, list[AuctionSeries]] = {}
    for instrument_id, series in points.items():
        auctions: list[AuctionSeries] = []
        last = None
        for ts, price, quantity, prev_close in sorted(series, key=lambda p: p[0]):
            if (
                last is None
                or (ts + KST_OFFSET_NS) // DAY_NS != auctions[-1].day
                or _label(_kst_secs(ts)) != auctions[-1].label
                or (auctions[-1].label == "intraday call" and ts - last > _GAP_NS)
            ):
                auctions.append(AuctionSeries(instrument_id))
            current = auctions[-1]
            current.ts.append(ts)
            current.price.append(price)
            current.quantity.append(quantity)
            current.prev_close.append(prev_close)
            last = ts
        out[instrument_id] = auctions
    return out


def chart_layout(
    auctions: Mapping[str, list[AuctionSeries]],
) -> tuple[
    list[tuple[str, int]], list[tuple[str, int]], dict[tuple[tuple[str, int], tuple[str, int]], AuctionSeries]
]:
    """Rows = (contract, KST day); columns = (auction label, n-th of that label in the day)."""
    cells: dict[tuple[tuple[str, int], tuple[str, int]], AuctionSeries] = {}
    for instrument_id, series in auctions.items():
        seen: Counter[tuple[int, str]] = Counter()
        for auction in series:
            n = seen[(auction.day, auction.label)]
            seen[(auction.day, auction.label)] += 1
            cells[((instrument_id, auction.day), (auction.label, n))] = auction
    rows = sorted({r for r, _ in cells})
    columns = sorted({c for _, c in cells}, key=lambda c: (_SLOT_ORDER[c[0]], c[1]))
    return rows, columns, cells


def draw_auction_chart(
    points: Mapping[str, Sequence[Point]],
    markers: Iterable[Marker],
    path: str | os.PathLike[str],
    *,
    title: str = "KIS H0ZFANC0: expected price and expected quantity through each auction",
    max_rows: int = 40,
) -> Path:
    """
    Draw one row per contract and day, one column per auction (pre-open, closing), save a PNG.

    Each panel: the expected price as a step line (zero prices, "no expected price", are left out
    and ticked in orange on the time axis), the previous close dashed when in range, the expected
    quantity as bars on a twin axis, and decisions as markers (LONG ▲ green, SHORT ▼ red, FLAT ●
    grey). Times are KST. At most `max_rows` rows are drawn (the title says when some are left out).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    path = Path(path)
    rows, columns, cells = chart_layout(split_auctions(points))
    if not rows:
        raise KISError("nothing to chart: no data points")
    if len(rows) > max_rows:
        title += f" (first {max_rows} of {len(rows)} contract-days)"
        rows = rows[:max_rows]
    marks: dict[str, list[Marker]] = {}
    for marker in markers:
        marks.setdefault(marker.instrument_id, []).append(marker)

    # Title and legend must fit the figure's width, which is one panel wide with one column: wrap the
    # title and fold the legend into rows, and make room for them in the height.
    width = 7.5 * len(columns)
    title_lines = textwrap.wrap(title, width=int(width * _TITLE_CHARS_PER_INCH))
    legend_columns = 7 if len(columns) > 1 else 4
    legend_rows = -(-7 // legend_columns)
    height = 2.6 * len(rows) + 0.5 + 0.3 * len(title_lines) + 0.25 * legend_rows
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(width, height), squeeze=False, constrained_layout=True
    )
    fig.suptitle("\n".join(title_lines), fontsize=14, fontweight="bold")
    fig.legend(
        handles=[
            Line2D([], [], color=_PRICE, linewidth=1.4, label="expected price (KRW)"),
            Line2D([], [], color=_PREV, linestyle="--", label="previous close"),
            Patch(color=_QTY, alpha=0.6, label="expected quantity (right axis)"),
            Line2D(
                [], [], color=_ZERO, marker="|", linestyle="", markersize=9, label="no expected price (0)"
            ),
            Line2D([], [], color=_LONG, marker="^", linestyle="", markersize=9, label="LONG"),
            Line2D([], [], color=_SHORT, marker="v", linestyle="", markersize=9, label="SHORT"),
            Line2D([], [], color=_FLAT, marker="o", linestyle="", markersize=8, label="FLAT"),
        ],
        loc="outside lower center",
        ncols=legend_columns,
        fontsize=9,
        frameon=False,
    )
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            ax = axes[r][c]
            auction = cells.get((row, column))
            if auction is None:
                ax.set_visible(False)
                continue
            _draw_panel(ax, auction, marks.get(auction.instrument_id, []))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
    except OSError as exc:
        raise KISError(f"cannot write chart {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


_PRICE, _PREV, _QTY, _ZERO = "#08306b", "#737373", "#9ecae1", "#e6550d"
_LONG, _SHORT, _FLAT = "#31a354", "#de2d26", "#636363"


def _kst_datetime(ts: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=(ts + KST_OFFSET_NS) // 1000)


def _draw_panel(ax: Any, auction: AuctionSeries, marks: list[Marker]) -> None:
    import matplotlib.dates as mdates
    from matplotlib.ticker import StrMethodFormatter

    times = [_kst_datetime(t) for t in auction.ts]
    valid = [(t, p) for t, p in zip(times, auction.price, strict=True) if p != 0.0]
    zeros = [t for t, p in zip(times, auction.price, strict=True) if p == 0.0]
    prev_close = next((p for p in reversed(auction.prev_close) if p), 0.0)

    qty_ax = ax.twinx()
    ax.set_zorder(qty_ax.get_zorder() + 1)  # the price line above the bars
    ax.patch.set_visible(False)
    if any(auction.quantity):
        # One bar per update, drawn as a single LineCollection (thousands of Rectangles are slow).
        qty_ax.vlines(times, 0, auction.quantity, color=_QTY, alpha=0.7, linewidth=1.0)
        qty_ax.set_ylim(0, max(auction.quantity) * 1.15)
        qty_ax.set_ylabel("exp. qty", color="#3182bd", fontsize=8)
        qty_ax.tick_params(axis="y", labelcolor="#3182bd", labelsize=7)
    else:
        qty_ax.set_yticks([])
        qty_ax.set_ylabel("qty n/a (7-field layout)", color="#3182bd", fontsize=8)

    if valid:
        vt, vp = zip(*valid, strict=True)
        ax.step(vt, vp, where="post", color=_PRICE, linewidth=1.3)
        lo, hi = min(vp), max(vp)
        pad = (hi - lo) * 0.15 or hi * 0.002 or 1.0
        lo, hi = lo - pad, hi + pad
        if (
            prev_close and lo - 3 * pad <= prev_close <= hi + 3 * pad
        ):  # show it when it does not flatten the path
            lo, hi = min(lo, prev_close - pad), max(hi, prev_close + pad)
            ax.axhline(prev_close, color=_PREV, linestyle="--", linewidth=0.9)
        ax.set_ylim(lo, hi)
    if zeros:
        ax.plot(
            zeros, [0.02] * len(zeros), "|", color=_ZERO, markersize=10, transform=ax.get_xaxis_transform()
        )

    t0, t1 = auction.ts[0], auction.ts[-1]
    for mark in marks:
        if t0 <= mark.ts_event <= t1 + 60 * NS_PER_SECOND and mark.price:
            symbol, color = {"LONG": ("^", _LONG), "SHORT": ("v", _SHORT)}.get(mark.side, ("o", _FLAT))
            at = (_kst_datetime(mark.ts_event), mark.price)
            ax.plot(*at, marker=symbol, color=color, markersize=12, markeredgecolor="black", zorder=5)
            ax.annotate(
                mark.side,
                at,
                textcoords="offset points",
                xytext=(-10, 8 if mark.side != "SHORT" else -16),
                fontsize=8,
                fontweight="bold",
                color=color,
                ha="right",
            )

    first = next((p for p in auction.price if p), 0.0)
    last = next((p for p in reversed(auction.price) if p), 0.0)
    facts = [f"final {format_cell(last, 0)}"] if last else ["no expected price"]
    if last and prev_close:
        facts.append(f"{(last - prev_close) / prev_close * 100:+.2f}% vs prev {format_cell(prev_close, 0)}")
    if first:
        facts.append(f"drift {(last - first) / first * 100:+.2f}%")
    ax.set_title(
        f"{auction.instrument_id}  {auction.label} {times[0]:%Y-%m-%d}  ({len(times)} updates)\n"
        + ", ".join(facts),
        fontsize=9,
        loc="left",
    )
    ax.set_ylabel("exp. price (KRW)", fontsize=8)
    ax.tick_params(axis="both", labelsize=7)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    locator = mdates.AutoDateLocator(minticks=5, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel("KST", fontsize=7, labelpad=1)
    ax.grid(True, alpha=0.3)
