"""
NautilusTrader's own tearsheet (plotly HTML) of a backtest, fitted to intraday KRX runs.

NautilusTrader 1.231 builds its tearsheet (`nautilus_trader.analysis.tearsheet.create_tearsheet`)
from the portfolio analyzer's statistics and *daily* returns. A run of a day or two has one return
or none, so its equity, drawdown and returns charts come out empty or as a single point. The
tearsheet here keeps NautilusTrader's run-information and statistics tables and adds two charts of
this run's own data: equity and balance through the run (KRW, KST time axis) and realised PnL per
contract; its daily-return charts are added from `DAILY_CHARTS_FROM_DAYS` KST days on. The page is
self-contained: plotly.js is inlined, nothing is loaded from the network.
"""

from __future__ import annotations

from typing import Any
from typing import Final

from kis_adapter.krx import kst_datetime
from kis_adapter.trading_report import TradingReport
from kis_adapter.trading_report import contract_totals

DAILY_CHARTS_FROM_DAYS: Final = 3  # fewer KST days of data give too few daily returns to chart
EQUITY_CHART: Final = "kis_equity"
PNL_CHART: Final = "kis_contract_pnl"
TITLE: Final = "kis-nt-community backtest (NautilusTrader tearsheet)"
_UP, _DOWN, _EQUITY, _BALANCE = "#31a354", "#de2d26", "#08306b", "#9ecae1"


def tearsheet_html(engine: Any, report: TradingReport) -> tuple[str | None, str | None]:
    """``(html, None)``, or ``(None, reason)`` when plotly or NautilusTrader could not build it."""
    try:
        from nautilus_trader.analysis import TearsheetConfig
        from nautilus_trader.analysis import TearsheetCustomChart
        from nautilus_trader.analysis import TearsheetDrawdownChart
        from nautilus_trader.analysis import TearsheetEquityChart
        from nautilus_trader.analysis import TearsheetMonthlyReturnsChart
        from nautilus_trader.analysis import TearsheetRunInfoChart
        from nautilus_trader.analysis import TearsheetStatsTableChart
        from nautilus_trader.analysis.tearsheet import create_tearsheet
    except ImportError as exc:
        return None, f"cannot import NautilusTrader's tearsheet ({exc}; is plotly installed?)"

    charts: list[Any] = [TearsheetRunInfoChart(), TearsheetStatsTableChart()]
    if _register_charts():
        times = [_kst_iso(r["ts_event"]) for r in report.equity]
        equity = [r["equity"] if r["equity"] is not None else r["balance"] for r in report.equity]
        contracts = contract_totals(report.pnl)
        charts += [
            TearsheetCustomChart(
                chart=EQUITY_CHART,
                title="Equity (dark, dots) and balance (light), KRW, KST",
                args={"times": times, "equity": equity, "balance": [r["balance"] for r in report.equity]},
            ),
            TearsheetCustomChart(
                chart=PNL_CHART,
                title="Realised PnL per contract (KRW, after commissions)",
                args={
                    "contracts": [r["instrument_id"] for r in contracts],
                    "pnl": [r["realized_pnl"] for r in contracts],
                },
            ),
        ]
    days = {r["time_kst"][:10] for r in report.equity if r["time_kst"]}
    if len(days) >= DAILY_CHARTS_FROM_DAYS:
        charts += [TearsheetEquityChart(), TearsheetDrawdownChart(), TearsheetMonthlyReturnsChart()]
    config = TearsheetConfig(
        charts=charts, layout=_layout(len(charts)), height=_height(len(charts)), title=TITLE
    )
    try:
        return create_tearsheet(engine, output_path=None, config=config), None
    except Exception as exc:  # NautilusTrader's or plotly's code on an unusual run: one line, no traceback
        return None, f"NautilusTrader's tearsheet failed: {type(exc).__name__}: {exc}"


# Pixel sizes of the grid: NautilusTrader's tables need about 560 px to show every statistic, a chart
# about 460; 110 px between rows keep an axis title clear of the next row's titles.
_TABLE_PX, _CHART_PX, _GAP_PX, _MARGIN_PX = 560, 460, 110, 200


def _plot_px(charts: int) -> int:
    rows = (charts + 1) // 2
    return _TABLE_PX + (_CHART_PX + _GAP_PX) * (rows - 1)


def _height(charts: int) -> int:
    return _plot_px(charts) + _MARGIN_PX


def _layout(charts: int) -> Any:
    """Two columns; the first row (the tables) taller than the chart rows, in fixed pixels."""
    from nautilus_trader.analysis import GridLayout

    rows = (charts + 1) // 2
    net = _TABLE_PX + _CHART_PX * (rows - 1)
    heights = [_TABLE_PX / net] + [_CHART_PX / net] * (rows - 1)
    spacing = _GAP_PX / _plot_px(charts) if rows > 1 else 0.0
    return GridLayout(rows=rows, cols=2, heights=heights, vertical_spacing=spacing, horizontal_spacing=0.1)


def _kst_iso(ts: int) -> str:
    """A KST wall-clock time as plotly reads dates (no zone: the axis shows KST as it is)."""
    return kst_datetime(ts).strftime("%Y-%m-%d %H:%M:%S.%f")


def _register_charts() -> bool:
    """Register this module's charts with NautilusTrader's tearsheet (1.231's registry); False if absent."""
    from nautilus_trader.analysis import tearsheet

    register = getattr(tearsheet, "_register_tearsheet_chart", None)
    if register is None:  # a NautilusTrader without the registry: the tables alone
        return False
    register(EQUITY_CHART, "scatter", "Equity (KRW)", _render_equity)
    register(PNL_CHART, "bar", "Realised PnL per contract (KRW)", _render_contract_pnl)
    return True


def _render_equity(
    fig: Any, row: int, col: int, times: list[str], equity: list[float], balance: list[float], **_: Any
) -> None:
    import plotly.graph_objects as go

    fig.add_trace(
        go.Scatter(
            x=times,
            y=balance,
            name="balance",
            mode="lines",
            line={"shape": "hv", "color": _BALANCE, "width": 2},
            hovertemplate="%{x}<br>balance %{y:,.0f} KRW<extra></extra>",
        ),
        row=row,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=times,
            y=equity,
            name="equity",
            mode="lines+markers",
            marker={"size": 4},
            line={"shape": "hv", "color": _EQUITY, "width": 1.5},
            hovertemplate="%{x}<br>equity %{y:,.0f} KRW<extra></extra>",
        ),
        row=row,
        col=col,
    )
    fig.update_yaxes(title_text="KRW", tickformat=",.0f", row=row, col=col)
    fig.update_xaxes(title_text="KST", tickformat="%m-%d %H:%M", row=row, col=col)


def _render_contract_pnl(
    fig: Any, row: int, col: int, contracts: list[str], pnl: list[float], **_: Any
) -> None:
    import plotly.graph_objects as go

    fig.add_trace(
        go.Bar(
            x=contracts,
            y=pnl,
            name="realised PnL",
            marker_color=[_UP if v >= 0 else _DOWN for v in pnl],
            text=[f"{v:,.0f}" for v in pnl],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}<br>%{y:,.0f} KRW<extra></extra>",
        ),
        row=row,
        col=col,
    )
    fig.update_yaxes(title_text="KRW", tickformat=",.0f", row=row, col=col)
    fig.update_xaxes(title_text="contract", row=row, col=col)
