"""Capture → convert → BacktestNode with the example strategies, through the API and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from kis_adapter.backtest import REPORT_FILES
from kis_adapter.backtest import build_run_config
from kis_adapter.backtest import parse_param
from kis_adapter.backtest import run_backtest
from kis_adapter.backtest import strategy_configs
from kis_adapter.catalog import convert_captures
from kis_adapter.cli import main
from kis_adapter.errors import ConfigError
from kis_adapter.protocol import H0ZFANC0
from kis_adapter.protocol import build_ack
from kis_adapter.protocol import build_data_frame
from kis_adapter.protocol import build_pingpong
from kis_adapter.report import Marker
from kis_adapter.report import draw_auction_chart

pytestmark = pytest.mark.filterwarnings("ignore:Timestamp.utcnow is deprecated")

REPO = Path(__file__).resolve().parent.parent
KIS_ADAPTER = Path(sys.executable).with_name("kis-adapter")
KST = dt.timezone(dt.timedelta(hours=9))
MONITOR = "strategies.auction_monitor:AuctionMonitor"
SIGNAL = "strategies.preopen_signal:PreOpenSignal"


def kst_ns(hhmmss: str) -> int:
    return int(dt.datetime.fromisoformat(f"2026-11-24T{hhmmss}").replace(tzinfo=KST).timestamp()) * 10**9


def rec(
    code: str, hhmmss: str, price: int, prev: int, phase: str = "311", qty: int | None = 300
) -> list[str]:
    change = price - prev
    sign = "5" if price == 0 or change < 0 else "2" if change > 0 else "3"
    fields = [
        code,
        hhmmss.replace(":", ""),
        str(price),
        str(change),
        sign,
        f"{change / prev * 100:.2f}",
        phase,
    ]
    return fields if qty is None else [*fields, str(qty)]


def small_day() -> list[tuple[int, str]]:
    """
    Pre-open call of three contracts: A11612 gaps up (LONG), A50612 down (SHORT), A3G612 in the
    7-field layout stays flat; a zero-price record, a two-record frame, an ack and a PINGPONG.
    """
    messages: list[tuple[int, str]] = [
        (kst_ns("08:29:59"), build_ack(H0ZFANC0, "A11612", "OPSP0000")),
        (
            kst_ns("08:30:00") + 4_000_000,
            build_data_frame(H0ZFANC0, [rec("A11612", "08:30:00", 0, 98_600, qty=0)]),
        ),
    ]
    steps = [
        ("08:31:00", 98_800, 586_000, 1_842),
        ("08:38:00", 99_400, 583_000, 1_843),
        ("08:44:00", 99_600, 580_000, 1_842),
    ]
    for hhmmss, a, b, c in steps:
        ts = kst_ns(hhmmss) + 5_000_000
        messages.append(
            (
                ts,
                build_data_frame(
                    H0ZFANC0, [rec("A11612", hhmmss, a, 98_600), rec("A50612", hhmmss, b, 587_000)]
                ),
            )
        )
        messages.append(
            (ts + 1_000_000, build_data_frame(H0ZFANC0, [rec("A3G612", hhmmss, c, 1_842, qty=None)]))
        )
    messages.append((kst_ns("08:44:30"), build_pingpong("20261124084430")))
    end = kst_ns("08:45:00") + 6_000_000
    messages.append(
        (end, build_data_frame(H0ZFANC0, [rec("A11612", "08:45:00", 99_700, 98_600, "112", 900)]))
    )
    messages.append(
        (
            end + 1_000_000,
            build_data_frame(H0ZFANC0, [rec("A50612", "08:45:00", 579_000, 587_000, "112", 800)]),
        )
    )
    messages.append(
        (end + 2_000_000, build_data_frame(H0ZFANC0, [rec("A3G612", "08:45:00", 1_842, 1_842, "112", None)]))
    )
    return messages


EXPECTED_EVENTS = Counter(
    {
        ("KISExpectedFill", "A11612.KRX"): 5,
        ("KISExpectedFill", "A50612.KRX"): 4,
        ("KISExpectedFill", "A3G612.KRX"): 4,
    }
)


@pytest.fixture
def catalog(capture_factory, tmp_path) -> Path:
    path = tmp_path / "catalog"
    report = convert_captures([capture_factory(small_day())], path)
    assert report.records == 13
    return path


def test_run_backtest_delivers_every_record_and_writes_the_report(catalog, tmp_path):
    """Every record reaches the strategies; the report folder has tables, decisions and the chart."""
    # Act
    outcome = run_backtest(build_run_config(catalog, strategy_configs()), tmp_path / "report")

    # Assert
    assert outcome.events == EXPECTED_EVENTS
    (rows,) = outcome.summaries.values()
    assert sum(r["updates"] for r in rows) == 13
    assert {r["instrument_id"]: r["zero_price"] for r in rows} == {
        "A11612.KRX": 1,
        "A3G612.KRX": 0,
        "A50612.KRX": 0,
    }
    sides = {str(d.instrument_id): d.side.value for d in outcome.decisions}
    assert sides == {"A11612.KRX": "LONG", "A50612.KRX": "SHORT", "A3G612.KRX": "FLAT"}
    names = sorted(p.name for p in outcome.files)
    assert names == [
        "auctions.csv",
        "auctions.txt",
        "chart.html",
        "chart.png",
        "decisions.csv",
        "events.csv",
        "summary.txt",
    ]
    assert outcome.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and outcome.chart.stat().st_size > 10_000
    assert _border_is_blank(outcome.chart)  # one auction column: title and legend still fit
    assert "LONG" in (tmp_path / "report" / "decisions.csv").read_text()


def test_run_backtest_with_instrument_ids_delivers_only_that_instrument(catalog):
    """A strategy subscribing per instrument sees exactly that instrument's records."""
    configs = strategy_configs([MONITOR], params=['instrument_ids=["A50612.KRX"]'])

    outcome = run_backtest(build_run_config(catalog, configs))

    (rows,) = outcome.summaries.values()
    assert [(r["instrument_id"], r["updates"]) for r in rows] == [("A50612.KRX", 4)]
    assert outcome.events == EXPECTED_EVENTS  # the counting actor still sees everything
    assert outcome.files == []


def test_parse_param_reads_json_else_string():
    """Values are JSON when they parse, else plain strings."""
    assert parse_param("min_gap_pct=1") == ("min_gap_pct", 1)
    assert parse_param('instrument_ids=["A.KRX"]') == ("instrument_ids", ["A.KRX"])
    assert parse_param("decision_time_kst=08:40:00") == ("decision_time_kst", "08:40:00")
    assert parse_param("output_dir=") == ("output_dir", "")
    with pytest.raises(ConfigError):
        parse_param("novalue")


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_backtest_with_catalog_prints_summary(catalog, tmp_path, capsys):
    """--catalog with default strategies prints events per instrument and the decisions."""
    code = main(["backtest", "--catalog", str(catalog), "--report", str(tmp_path / "r"), "--no-chart"])

    out = capsys.readouterr().out
    assert code == 0
    assert "Events delivered: 13" in out
    assert "A3G612.KRX" in out and "Decisions: 3 (FLAT 1, LONG 1, SHORT 1)" in out
    assert not (tmp_path / "r" / "chart.png").exists()


def test_cli_backtest_with_param_changes_the_decisions(catalog, tmp_path, capsys):
    """--param goes to the strategies that have it: a 50 % gap threshold makes every decision FLAT."""
    args = ["backtest", "--catalog", str(catalog), "--report", str(tmp_path / "r"), "--no-chart"]
    code = main([*args, "--param", "min_gap_pct=50", "--param", "max_gap_secs=60"])

    assert code == 0
    assert "Decisions: 3 (FLAT 3)" in capsys.readouterr().out


def test_cli_backtest_with_one_strategy_and_its_config(catalog, tmp_path, capsys):
    """--strategy with an explicit --strategy-config runs only that strategy."""
    code = main(
        [
            "backtest",
            "--catalog",
            str(catalog),
            "--strategy",
            SIGNAL,
            "--strategy-config",
            "strategies.preopen_signal:PreOpenSignalConfig",
            "--param",
            "fade=true",
            "--report",
            str(tmp_path / "r"),
            "--no-chart",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "AuctionMonitor" not in out and "Decisions: 3 (FLAT 1, LONG 1, SHORT 1)" in out
    assert "fade the gap" in (tmp_path / "r" / "decisions.csv").read_text()


def test_cli_backtest_with_config_file(sample_catalog, tmp_path, capsys):
    """--config takes a BacktestRunConfig JSON: the bundled example (the venue KRX with the auction
    module declared by hand, every feed, the example strategies), pointed at the sample's catalog,
    trades as ``backtest --catalog`` does."""
    config = json.loads((REPO / "config" / "backtest.json").read_text())
    assert config["venues"][0]["modules"][0]["actor_path"] == "kis_adapter.auction:KRXAuctionModule"
    for data in config["data"]:
        data["catalog_path"] = str(sample_catalog)
    path = tmp_path / "backtest.json"
    path.write_text(json.dumps(config))

    code = main(["backtest", "--config", str(path), "--report", str(tmp_path / "r"), "--no-chart"])
    by_catalog = main(
        ["backtest", "--catalog", str(sample_catalog), "--report", str(tmp_path / "c"), "--no-chart"]
    )

    out = capsys.readouterr().out
    assert code == 0 and by_catalog == 0
    assert "Decisions: 10" in out and (tmp_path / "r" / "auctions.csv").exists()
    assert "Trading (venue KRX): 8 orders (8 filled), 8 fills" in out
    assert (tmp_path / "r" / "fills.csv").read_text() == (tmp_path / "c" / "fills.csv").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "no_such_module:Thing"], "cannot import module 'no_such_module'"),
        (["--strategy", "strategies.auction_monitor:Nope"], "has no strategy 'Nope'"),
        (["--strategy", "strategies.auction_monitor"], "expected module:Name"),
        (["--strategy", "kis_adapter.backtest:EventCounter"], "is not a Strategy subclass"),
        (["--param", "nope=1"], "no selected strategy has a parameter nope"),
        (["--param", 'min_quantity="many"'], "bad parameter for PreOpenSignalConfig"),
        (["--param", "novalue"], "expected key=value"),
        (["--param", "decision_time_kst=25:00:00"], "bad parameter for PreOpenSignal: not a KST time"),
        (["--param", 'instrument_ids=["nodot"]'], "bad parameter for AuctionMonitor"),
        (["--strategy", MONITOR, "--strategy", SIGNAL, "--strategy-config", "x:Y"], "exactly one --strategy"),
    ],
)
def test_cli_backtest_with_bad_strategy_or_param_exits_2(catalog, tmp_path, capsys, extra, message):
    """Bad module paths and parameters are one-line configuration errors, exit code 2."""
    code = main(["backtest", "--catalog", str(catalog), "--report", str(tmp_path / "r"), *extra])

    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_backtest_with_missing_or_empty_catalog_exits_2(tmp_path, capsys):
    """A catalog that does not exist, or holds no KISExpectedFill, fails before running."""
    assert main(["backtest", "--catalog", str(tmp_path / "missing")]) == 2
    assert "catalog not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["backtest", "--catalog", str(tmp_path / "empty")]) == 2
    assert "has no KISExpectedFill data" in capsys.readouterr().err


def test_cli_backtest_with_bad_config_file_exits_2(catalog, tmp_path, capsys):
    """Missing, malformed or mixed-up --config is a configuration error."""
    assert main(["backtest", "--config", str(tmp_path / "nope.json")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"venues": [], "data": [{"catalog_path": 1}]}')
    assert main(["backtest", "--config", str(bad)]) == 2
    assert "invalid BacktestRunConfig" in capsys.readouterr().err
    assert main(["backtest", "--config", str(bad), "--param", "a=1"]) == 2
    assert "go with --catalog" in capsys.readouterr().err


# -- A USER'S OWN STRATEGY ------------------------------------------------------------------------

USER_STRATEGY = textwrap.dedent(
    """
    from nautilus_trader.config import StrategyConfig
    from nautilus_trader.model.data import DataType
    from nautilus_trader.model.identifiers import ClientId
    from nautilus_trader.trading.strategy import Strategy

    from kis_adapter import KISExpectedFill


    class MyConfig(StrategyConfig, frozen=True):
        label: str = "mine"


    class My(Strategy):
        def on_start(self) -> None:
            self.seen = 0
            self.subscribe_data(DataType(KISExpectedFill), client_id=ClientId("KIS"))

        def on_data(self, data) -> None:
            self.seen += 1

        def on_stop(self) -> None:
            self.log.info(f"USER-STRATEGY {self.config.label} saw {self.seen} records")
    """
)


def _user_strategy(directory: Path, name: str = "my_strategy.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(USER_STRATEGY)
    return path


def test_cli_backtest_with_strategy_file_runs_it_and_shows_its_logs_alone(catalog, tmp_path):
    """--strategy ./file.py:Class (a real process): it runs, its self.log.info shows, Nautilus's INFO not."""
    # Arrange
    work = tmp_path / "work"
    _user_strategy(work)
    argv = [str(KIS_ADAPTER), "backtest", "--catalog", str(catalog), "--strategy", "./my_strategy.py:My"]
    argv += ["--strategy-config", "./my_strategy.py:MyConfig", "--param", "label=file", "--no-chart"]

    # Act
    result = subprocess.run(argv, capture_output=True, text=True, cwd=work, timeout=120, check=False)

    # Assert
    assert result.returncode == 0, result.stderr
    assert "Events delivered: 13" in result.stdout
    assert "USER-STRATEGY file saw 13 records" in result.stdout
    assert "BacktestEngine" not in result.stdout and "NAUTILUS TRADER" not in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_backtest_with_module_in_working_directory_finds_it(catalog, tmp_path, monkeypatch, capsys):
    """--strategy module:Class finds a module in the working directory (searched after installed ones)."""
    # Arrange
    work = tmp_path / "work"
    _user_strategy(work, "my_cwd_strategy.py")
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_cwd_strategy", raising=False)

    # Act
    code = main(["backtest", "--catalog", str(catalog), "--strategy", "my_cwd_strategy:My", "--no-chart"])

    # Assert
    assert code == 0, capsys.readouterr().err
    assert "Events delivered: 13" in capsys.readouterr().out
    assert sys.path[-1] == str(work)  # last: a user's module never shadows an installed package


@pytest.mark.parametrize(
    ("spec", "content", "message"),
    [
        ("./missing.py:My", None, "strategy file not found: ./missing.py"),
        ("./broken.py:My", "def oops(:\n", "cannot load strategy file ./broken.py: SyntaxError"),
        ("./raises.py:My", "raise RuntimeError('no config found')\n", "RuntimeError: no config found"),
        ("./empty.py:My", "", "has no strategy 'My'"),
    ],
)
def test_cli_backtest_with_bad_strategy_file_exits_2_with_one_line(
    catalog, tmp_path, monkeypatch, capsys, spec, content, message
):
    """A missing file, a syntax error or an exception at import: one Error line, exit 2, no traceback."""
    # Arrange
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / spec[2:].partition(":")[0]).write_text(content)

    # Act
    code = main(["backtest", "--catalog", str(catalog), "--strategy", spec, "--no-chart"])

    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and err.startswith("Error: ")


def test_build_run_config_with_strategy_log_level_filters_nautilus_components_only():
    """Strategy loggers get their own level; the stdout level is the lower one; Nautilus's stay at theirs."""
    # Arrange
    strategies = strategy_configs([MONITOR, SIGNAL])

    # Act
    logging = build_run_config("x", strategies, log_level="ERROR", strategy_log_level="INFO").engine.logging

    # Assert
    assert logging.log_level == "INFO"
    levels = logging.log_component_levels
    assert levels["AuctionMonitor"] == "INFO" and levels["PreOpenSignal"] == "INFO"
    assert levels["BacktestEngine"] == levels["DataEngine"] == levels["BACKTESTER-001"] == "ERROR"
    assert build_run_config("x", strategies).engine.logging.log_component_levels is None


# -- CLI EDGES -----------------------------------------------------------------------------------


def test_cli_with_verbose_after_the_subcommand_accepts_it(tmp_path):
    """``kis-adapter backtest ... -v`` is -v (tracebacks): the error is raised, not an argparse refusal."""
    # Act / Assert
    with pytest.raises(ConfigError, match="catalog not found"):
        main(["backtest", "--catalog", str(tmp_path / "missing"), "-v"])


def test_cli_backtest_with_report_path_that_is_a_file_exits_2_before_running(catalog, tmp_path, capsys):
    """--report naming a file fails at once (exit 2, one line), not after the whole run."""
    # Arrange
    readme = tmp_path / "README.md"
    readme.write_text("mine")

    # Act
    code = main(["backtest", "--catalog", str(catalog), "--report", str(readme)])

    # Assert
    out, err = capsys.readouterr()
    assert code == 2
    assert err == f"Error: report path is not a directory: {readme}\n"
    assert "Events delivered" not in out
    assert readme.read_text() == "mine"


def test_cli_backtest_twice_into_one_report_folder_leaves_no_file_of_the_first_run(catalog, tmp_path, capsys):
    """The second run removes what the first wrote (chart, decisions) and keeps the user's own files."""
    # Arrange
    report = tmp_path / "report"
    assert main(["backtest", "--catalog", str(catalog), "--report", str(report)]) == 0
    assert {"chart.png", "decisions.csv", "auctions.csv"} <= {p.name for p in report.iterdir()}
    (report / "notes.txt").write_text("mine")

    # Act
    code = main(["backtest", "--catalog", str(catalog), "--report", str(report), "--strategy", MONITOR,
                 "--no-chart"])  # fmt: skip

    # Assert
    assert code == 0
    names = sorted(p.name for p in report.iterdir())
    assert names == ["auctions.csv", "auctions.txt", "events.csv", "notes.txt", "summary.txt"]
    assert set(names) - {"notes.txt"} <= set(REPORT_FILES)


# -- CHART -----------------------------------------------------------------------------------------


def _border_is_blank(png: Path, margin: int = 2) -> bool:
    """Whether the outermost pixels of the image are all background (nothing drawn was cut off)."""
    import matplotlib.image

    image = matplotlib.image.imread(png)[..., :3]
    edges = [image[:margin], image[-margin:], image[:, :margin], image[:, -margin:]]
    return all((edge > 0.98).all() for edge in edges)


@pytest.mark.parametrize("closing", [False, True])
def test_draw_auction_chart_with_one_or_two_columns_fits_title_and_legend(tmp_path, closing):
    """One auction column (pre-open only) or two: the title and the legend are drawn whole."""
    # Arrange
    points = [(kst_ns(f"08:{30 + i // 60:02d}:{i % 60:02d}"), 98_600.0 + 10 * i, 100 + i, 98_600.0)
              for i in range(0, 840, 7)]  # fmt: skip
    if closing:
        points += [(kst_ns(f"15:{35 + i // 60:02d}:{i % 60:02d}"), 99_000.0 + 5 * i, 100 + i, 98_600.0)
                   for i in range(0, 600, 7)]  # fmt: skip
    markers = [Marker("A11612.KRX", kst_ns("08:40:00"), "LONG", 99_500.0)]

    # Act
    png = draw_auction_chart({"A11612.KRX": points}, markers, tmp_path / "chart.png")

    # Assert
    assert _border_is_blank(png)


def test_readme_strategy_example_runs_from_a_file_as_the_readme_says(catalog, tmp_path):
    """The README's strategy, saved as my_strategy.py, runs with the README's command and its logs show."""
    # Arrange
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Writing your own strategy") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("```\n", 10)]
    (tmp_path / "my_strategy.py").write_text(code)
    assert "--strategy ./my_strategy.py:My" in section
    argv = [str(KIS_ADAPTER), "backtest", "--catalog", str(catalog), "--strategy", "./my_strategy.py:My"]

    # Act
    result = subprocess.run(
        [*argv, "--no-chart"], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
    )

    # Assert
    assert result.returncode == 0, result.stderr
    assert "A11612.KRX 311 98800.0 x 300" in result.stdout  # the example's self.log.info
