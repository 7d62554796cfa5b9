"""
The auction chart as an interactive, self-contained HTML page (plotly; plotly.js inlined).

The PNG of `kis_adapter.report.draw_auction_chart` shows every auction at once; this page shows one
at a time, picked with two dropdowns: the contract, and the auction (each KST day's pre-open call,
closing call, and any intraday call). It draws what the PNG draws — the expected price as a step line
(zero prices, "no expected price", left out and ticked in orange at the bottom), the previous close
dashed, the expected quantity as bars on a second axis — plus the auction print (the first trade at
or after the call's end) and the run's fills of that contract from the call's start to a minute
after its print. Times are KST. Nothing is fetched from the network, so the page works offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Final

from kis_adapter.errors import KISError
from kis_adapter.krx import kst_datetime
from kis_adapter.krx import kst_day
from kis_adapter.protocol.values import NS_PER_SECOND
from kis_adapter.report import AuctionSeries
from kis_adapter.report import Point
from kis_adapter.report import format_cell
from kis_adapter.report import split_auctions

PAGE_FILE: Final = "chart.html"
DIV_ID: Final = "auction-chart"  # the plotly figure's element id (the browser test looks it up)
FILL_WINDOW_NS: Final = 60 * NS_PER_SECOND  # fills up to a minute after the print are the auction's
TRACES_PER_AUCTION: Final = 7
_PRICE, _PREV, _QTY, _ZERO = "#08306b", "#737373", "#9ecae1", "#e6550d"
_BUY, _SELL, _PRINT = "#31a354", "#de2d26", "#6a51a3"
_SLOT: Final = {"pre-open call": 0, "intraday call": 1, "closing call": 2}


@dataclass(frozen=True, slots=True)
class Auction:
    """One auction with what the page marks on it."""

    series: AuctionSeries
    fills: list[Mapping[str, Any]]
    print_: Any | None  # an AuctionPrint (instrument_id, call, ts_event, price, size) or None

    @property
    def call_label(self) -> str:
        """``2026-11-24 pre-open call``: the auction dropdown's entry."""
        return f"{kst_datetime(self.series.ts[0]).date().isoformat()} {self.series.label}"

    @property
    def label(self) -> str:
        return f"{self.series.instrument_id}  {self.call_label}"


def auctions_of(
    points: Mapping[str, Sequence[Point]], fills: Iterable[Mapping[str, Any]] = (), prints: Iterable[Any] = ()
) -> list[Auction]:
    """Every auction in `points`, by contract, day and call, with its print and the fills in its window."""
    by_call = {(p.instrument_id, kst_day(p.ts_event), p.call): p for p in prints}
    fills = sorted(fills, key=lambda f: f["ts_event"] or 0)
    out = []
    for instrument_id, series_list in sorted(split_auctions(points).items()):
        for series in sorted(series_list, key=lambda s: (s.day, _SLOT.get(s.label, 1), s.ts[0])):
            print_ = by_call.get((instrument_id, series.day, series.label))
            end = max(series.ts[-1], print_.ts_event if print_ else 0) + FILL_WINDOW_NS
            mine = [
                f
                for f in fills
                if f["instrument_id"] == instrument_id and series.ts[0] <= (f["ts_event"] or 0) <= end
            ]
            out.append(Auction(series, mine, print_))
    return out


def _x(ts: int) -> str:
    """KST wall-clock time as plotly reads a date (no zone: the axis shows KST as it is)."""
    return kst_datetime(ts).strftime("%Y-%m-%d %H:%M:%S.%f")


def _title(auction: Auction) -> str:
    series = auction.series
    prices = [p for p in series.price if p]
    prev = next((p for p in reversed(series.prev_close) if p), 0.0)
    facts = [f"final {format_cell(prices[-1], 0)}"] if prices else ["no expected price"]
    if prices and prev:
        facts.append(f"{(prices[-1] - prev) / prev * 100:+.2f}% vs prev close {format_cell(prev, 0)}")
    if prices:
        facts.append(f"drift {(prices[-1] - prices[0]) / prices[0] * 100:+.2f}%")
    if auction.print_ is not None:
        facts.append(f"print {format_cell(auction.print_.price, 0)} × {format_cell(auction.print_.size, 0)}")
    if auction.fills:
        facts.append(f"{len(auction.fills)} fill{'' if len(auction.fills) == 1 else 's'}")
    return f"<b>{auction.label}</b> ({len(series.ts)} updates)<br><sub>{', '.join(facts)}</sub>"


def _ranges(auction: Auction) -> tuple[list[str], list[float] | None, list[float]]:
    """x range, price range (prev close only when it does not flatten the path), quantity range."""
    series = auction.series
    end = max(series.ts[-1], auction.print_.ts_event if auction.print_ else 0)
    end = max(end, *(f["ts_event"] for f in auction.fills)) if auction.fills else end
    span = max(end - series.ts[0], 60 * NS_PER_SECOND)
    x = [_x(series.ts[0] - span // 40), _x(end + span // 12)]  # room right of the print for its marks
    marks = [p for p in series.price if p]
    marks += [f["price"] for f in auction.fills] + ([auction.print_.price] if auction.print_ else [])
    if not marks:
        return x, None, [0, max(series.quantity or [1]) * 1.15 or 1]
    lo, hi = min(marks), max(marks)
    pad = (hi - lo) * 0.15 or hi * 0.002 or 1.0
    lo, hi = lo - pad, hi + pad
    prev = next((p for p in reversed(series.prev_close) if p), 0.0)
    if prev and lo - 3 * pad <= prev <= hi + 3 * pad:
        lo, hi = min(lo, prev - pad), max(hi, prev + pad)
    return x, [lo, hi], [0, max(max(series.quantity or [0]) * 1.15, 1)]


def _traces(auction: Auction, visible: bool) -> list[Any]:
    """The seven traces of one auction, in a fixed order (the dropdown toggles them as a block)."""
    import plotly.graph_objects as go

    series = auction.series
    times = [_x(t) for t in series.ts]
    prices = [p if p else None for p in series.price]
    zeros = [t for t, p in zip(times, series.price, strict=True) if not p]
    prev = next((p for p in reversed(series.prev_close) if p), 0.0)
    buys = [f for f in auction.fills if f["side"] == "BUY"]
    sells = [f for f in auction.fills if f["side"] == "SELL"]

    def fill_trace(rows: list[Mapping[str, Any]], name: str, symbol: str, color: str) -> Any:
        return go.Scatter(
            x=[_x(f["ts_event"]) for f in rows],
            y=[f["price"] for f in rows],
            mode="markers+text",
            name=name,
            yaxis="y2",
            visible=visible,
            marker={"symbol": symbol, "size": 14, "color": color, "line": {"color": "black", "width": 1}},
            text=[f"{f['side']} {format_cell(f['quantity'], 0)}" for f in rows],
            textposition="top center" if symbol == "triangle-up" else "bottom center",
            textfont={"color": color, "size": 12},
            cliponaxis=False,
            customdata=[[f["quantity"], f.get("time_kst", "")] for f in rows],
            hovertemplate=f"{name} %{{customdata[0]}} @ %{{y:,.0f}}<br>%{{customdata[1]}}<extra></extra>",
        )

    print_ = auction.print_
    return [
        go.Scatter(  # one vertical stem per update, as the PNG's bars (a bar trace merges dense updates)
            x=[t for t in times for t in (t, t, None)],
            y=[v for q in series.quantity for v in (0, q, None)],
            customdata=[q for q in series.quantity for q in (q, q, q)],
            name="expected quantity (right axis)",
            mode="lines",
            visible=visible,
            line={"color": _QTY, "width": 1.2},
            hovertemplate="%{x}<br>expected quantity %{customdata:,}<extra></extra>",
        ),
        go.Scatter(
            x=times,
            y=prices,
            name="expected price (KRW)",
            yaxis="y2",
            mode="lines",
            visible=visible,
            connectgaps=False,
            line={"shape": "hv", "color": _PRICE, "width": 1.6},
            hovertemplate="%{x}<br>expected price %{y:,.0f}<extra></extra>",
        ),
        go.Scatter(
            x=[times[0], times[-1]] if prev else [],
            y=[prev, prev] if prev else [],
            name="previous close",
            yaxis="y2",
            mode="lines",
            visible=visible,
            line={"color": _PREV, "dash": "dash", "width": 1},
            hovertemplate=f"previous close {format_cell(prev, 0)}<extra></extra>",
        ),
        go.Scatter(
            x=zeros,
            y=[0.03] * len(zeros),
            yaxis="y3",
            name="no expected price (0)",
            mode="markers",
            visible=visible,
            marker={
                "symbol": "line-ns-open",
                "size": 12,
                "color": _ZERO,
                "line": {"width": 2, "color": _ZERO},
            },
            hovertemplate="%{x}<br>no expected price<extra></extra>",
        ),
        go.Scatter(
            x=[_x(print_.ts_event)] if print_ else [],
            y=[print_.price] if print_ else [],
            name="auction print",
            yaxis="y2",
            mode="markers",
            visible=visible,
            # hollow and larger than a fill marker: a fill at the print price stays visible inside it
            marker={
                "symbol": "star-open",
                "size": 24,
                "color": _PRINT,
                "line": {"color": _PRINT, "width": 2},
            },
            customdata=[[print_.size]] if print_ else [],
            hovertemplate="auction print %{y:,.0f} × %{customdata[0]:,}<br>%{x}<extra></extra>",
        ),
        fill_trace(buys, "BUY fill", "triangle-up", _BUY),
        fill_trace(sells, "SELL fill", "triangle-down", _SELL),
    ]


def _menu(name: str, labels: Sequence[str], x: float) -> dict[str, Any]:
    """A dropdown whose clicks the page's script handles (method "skip": plotly itself does nothing)."""
    return {
        "name": name,
        "buttons": [{"label": label, "method": "skip", "args": [label]} for label in labels],
        "direction": "down",
        "x": x,
        "xanchor": "left",
        "y": 1.0,
        "yanchor": "bottom",
        "pad": {"b": 78},
        "showactive": True,
        "active": 0,
    }


def _menu_label(text: str, x: float) -> dict[str, Any]:
    return {
        "text": text,
        "x": x,
        "xref": "paper",
        "xanchor": "right",
        "xshift": -6,
        "y": 1.0,
        "yref": "paper",
        "yanchor": "bottom",
        "yshift": 84,
        "showarrow": False,
    }


def auction_figure(auctions: Sequence[Auction]) -> Any:
    """
    One figure holding every auction's traces, the first visible, with two dropdowns (contract,
    auction) and, in ``layout.meta``, what each pair shows: the page's script (`PAGE_SCRIPT`) applies it.
    """
    import plotly.graph_objects as go

    if not auctions:
        raise KISError("nothing to chart: no expected-fill data")
    fig = go.Figure()
    for i, auction in enumerate(auctions):
        for trace in _traces(auction, visible=i == 0):
            fig.add_trace(trace)
    contracts = sorted({a.series.instrument_id for a in auctions})
    labels = sorted({a.call_label for a in auctions}, key=_call_order)
    table = []
    for i, auction in enumerate(auctions):
        x, y, y2 = _ranges(auction)
        layout: dict[str, Any] = {"title.text": _title(auction), "xaxis.range": x, "yaxis.range": y2}
        layout.update({"yaxis2.range": y} if y else {"yaxis2.autorange": True})
        table.append(
            {
                "contract": auction.series.instrument_id,
                "auction": auction.call_label,
                "first": i * TRACES_PER_AUCTION,
                "layout": layout,
            }
        )
    x, y, y2 = _ranges(auctions[0])
    fig.update_layout(
        meta={"auctions": table, "contracts": contracts, "labels": labels, "traces": TRACES_PER_AUCTION},
        title={
            "text": _title(auctions[0]),
            "x": 0.0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1.0,
            "yanchor": "bottom",
            "yref": "paper",
            "pad": {"b": 24},
        },
        height=700,
        margin={"t": 170, "b": 120, "l": 90, "r": 90},
        template="plotly_white",
        hovermode="closest",
        legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.16, "yanchor": "top"},
        xaxis={"title": {"text": "KST"}, "range": x, "tickformat": "%H:%M:%S", "showgrid": True},
        # Quantity on the first y axis, price on an overlay: plotly draws an overlay's traces above, so
        # the price line, the print and the fills stay on top of the quantity bars.
        yaxis={
            "title": {"text": "expected quantity", "font": {"color": "#3182bd"}},
            "side": "right",
            "range": y2,
            "showgrid": False,
            "tickfont": {"color": "#3182bd"},
            "tickformat": ",d",
            "nticks": 6,
        },
        yaxis2={
            "title": {"text": "expected price (KRW)"},
            "overlaying": "y",
            "side": "left",
            "tickformat": ",.0f",
            "range": y,
            "showgrid": True,
            "tickmode": "auto",
        },
        yaxis3={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        updatemenus=[_menu("contract", contracts, 0.08), _menu("auction", labels, 0.34)],
        annotations=[_menu_label(f"Contract ({len(contracts)}):", 0.08), _menu_label("Auction:", 0.34)],
    )
    return fig


def _call_order(label: str) -> tuple[str, int]:
    date, _, call = label.partition(" ")
    return date, _SLOT.get(call, 1)


# Two dropdowns, one state: show the auction of the chosen contract and day × call (or that contract's
# first auction when it has no such call), and keep both dropdowns' shown choice in step.
PAGE_SCRIPT: Final = """
var gd = document.getElementById('{plot_id}');
var meta = gd.layout.meta;
var state = {contract: meta.auctions[0].contract, auction: meta.auctions[0].auction};
gd.on('plotly_buttonclicked', function (event) {
    var name = event.menu.name;
    if (!(name in state)) { return; }
    state[name] = event.button.label;
    var pick = meta.auctions.find(function (a) {
        return a.contract === state.contract && a.auction === state.auction;
    }) || meta.auctions.find(function (a) { return a.contract === state.contract; });
    state.auction = pick.auction;
    var visible = gd.data.map(function (_, k) { return k >= pick.first && k < pick.first + meta.traces; });
    var layout = Object.assign({}, pick.layout);
    layout['updatemenus[0].active'] = meta.contracts.indexOf(pick.contract);
    layout['updatemenus[1].active'] = meta.labels.indexOf(pick.auction);
    Plotly.update(gd, {visible: visible}, layout);
});
"""


def write_auction_page(
    points: Mapping[str, Sequence[Point]],
    path: str | Path,
    *,
    fills: Iterable[Mapping[str, Any]] = (),
    prints: Iterable[Any] = (),
    title: str = "KIS auctions: expected price and quantity, prints and fills",
) -> Path:
    """Write the self-contained page (plotly.js inlined) and return its path."""
    path = Path(path)
    fig = auction_figure(auctions_of(points, fills, prints))
    html = fig.to_html(
        full_html=True,
        include_plotlyjs=True,
        include_mathjax=False,
        div_id=DIV_ID,
        post_script=PAGE_SCRIPT,
        config={"displaylogo": False, "responsive": True},
    )
    html = html.replace("<head>", f"<head><title>{title}</title>", 1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise KISError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
