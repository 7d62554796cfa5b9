"""
Catalogs on object storage, against a real S3 server (moto's server mode on 127.0.0.1): the round
trip, an interrupted convert, two converts at once, and the errors of a bad endpoint, bucket or
credentials. Also the leases that keep concurrent runs from clobbering each other, on a local disk.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3fs
from s3_helpers import ACCESS_KEY
from s3_helpers import SECRET_KEY
from s3_helpers import run_cli
from s3_helpers import small_capture

from kis_adapter.capture import CaptureReader
from kis_adapter.capture import CaptureWriter
from kis_adapter.catalog import JOURNAL_FILE
from kis_adapter.catalog import LEASE_DIR
from kis_adapter.catalog import STAGING_DIR
from kis_adapter.catalog import convert_captures
from kis_adapter.catalog import recover_catalog
from kis_adapter.cli import main
from kis_adapter.errors import ConfigError
from kis_adapter.storage import CatalogLocation

GAP = "strategies.gap_trader:GapTrader"
DAY_A = "2026-11-24"
DAY_B = "2026-11-25"


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small synthetic captures of two KST days (three contracts each), with their masters."""
    directory = tmp_path_factory.mktemp("captures")
    return {
        DAY_A: small_capture(directory / "a", DAY_A),
        DAY_B: small_capture(directory / "b", DAY_B, seed=7),
    }


@pytest.fixture(scope="module")
def local_catalog(captures: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both days converted into a local catalog, one after the other: the reference."""
    path = tmp_path_factory.mktemp("local") / "catalog"
    convert_captures([captures[DAY_A], captures[DAY_B]], path)
    return path


def contents(root: str, fs) -> dict[str, list[dict]]:
    """``{path under data/: rows}`` of every Parquet file of a catalog: what a reader can see."""
    out = {}
    for file in sorted(fs.glob(f"{root}/data/**/*.parquet")):
        out[file[len(root) :].lstrip("/")] = pq.read_table(file, filesystem=fs).to_pylist()
    return out


def local_contents(path: Path) -> dict[str, list[dict]]:
    import fsspec

    return contents(str(path), fsspec.filesystem("file"))


def s3_contents(bucket_name: str, prefix: str = "cat") -> dict[str, list[dict]]:
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    return contents(f"{bucket_name}/{prefix}", fs)


def leftovers(bucket_name: str, prefix: str = "cat") -> list[str]:
    """Journals, leases, staged parts or temporary files left in an S3 catalog."""
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    names = fs.find(f"{bucket_name}/{prefix}")
    return [n for n in names if JOURNAL_FILE in n or LEASE_DIR in n or STAGING_DIR in n or n.endswith(".tmp")]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


# -- LOCATIONS -----------------------------------------------------------------------------------


def test_catalog_location_with_local_path_and_s3_uri_keeps_what_nautilus_takes():
    """A plain path stays as given; s3://bucket/prefix becomes protocol s3 and path bucket/prefix."""
    local = CatalogLocation.parse("out/catalog")
    remote = CatalogLocation.parse("s3://bucket/some/prefix/")

    assert (local.is_local, local.path) == (True, "out/catalog")
    assert (remote.protocol, remote.path, remote.uri) == (
        "s3",
        "bucket/some/prefix",
        "s3://bucket/some/prefix",
    )
    assert remote.data_config_fields() == {"catalog_path": "bucket/some/prefix", "catalog_fs_protocol": "s3"}


@pytest.mark.parametrize(
    ("uri", "message"),
    [("s3://", "no bucket in the URI"), ("nosuchproto://x/y", "unsupported storage 'nosuchproto'")],
)
def test_catalog_location_with_bad_uri_is_one_config_error(uri, message):
    """A URI without a bucket or with an unknown protocol is refused at once, in one line."""
    with pytest.raises(ConfigError, match=message):
        CatalogLocation.parse(uri)


# -- ROUND TRIP ----------------------------------------------------------------------------------


def test_s3_round_trip_convert_backtest_and_sweep_equal_the_local_catalog(
    captures, local_catalog, bucket, tmp_path, capsys
):
    """convert to s3://, backtest and a sweep point from s3://: the same files and results as locally."""
    # Arrange
    uri = f"s3://{bucket}/cat"

    # Act
    assert (
        main(["convert", str(captures[DAY_A]), str(captures[DAY_B]), "--catalog", uri, "--no-progress"]) == 0
    )
    for where, report in ((uri, tmp_path / "s3"), (str(local_catalog), tmp_path / "local")):
        code = main(
            ["backtest", "--catalog", where, "--strategy", GAP, "--report", str(report), "--no-chart"]
        )
        assert code == 0
    code = main(["sweep", "--catalog", uri, "--strategy", GAP, "--grid", "stop_loss_pct=1.5",
                 "--workers", "1", "--out", str(tmp_path / "sweep"), "--no-progress"])  # fmt: skip
    out, err = capsys.readouterr()

    # Assert
    assert code == 0, err
    assert s3_contents(bucket) == local_contents(local_catalog)
    assert leftovers(bucket) == []
    local_results = json.loads((tmp_path / "local" / "results.json").read_text())
    assert json.loads((tmp_path / "s3" / "results.json").read_text()) == local_results
    assert local_results["fills"] > 0  # the comparison is not of two empty runs
    for name in ("auctions.csv", "events.csv"):
        assert (tmp_path / "s3" / name).read_text() == (tmp_path / "local" / name).read_text()
    sweep_csv = (tmp_path / "sweep" / "sweep.csv").read_text()
    assert str(local_results["pnl_krw"]) in sweep_csv and ",," not in sweep_csv.splitlines()[1]
    assert SECRET_KEY not in out + err + sweep_csv


# -- INTERRUPTED CONVERT -------------------------------------------------------------------------

# In a child process: convert, but die (SIGKILL) at the first PUT of a catalog data file, or at the
# first removal of one (after the merged file replacing it was stored): the two states a crash of
# an object-store publish can leave.
_KILLED_CONVERT = textwrap.dedent(
    """
    import os, signal, sys
    import s3fs
    point, capture, uri = sys.argv[1:4]
    def is_data(path):
        path = path if isinstance(path, str) else path[0]
        return "/data/" in path and path.endswith(".parquet")
    original_put, original_rm = s3fs.S3FileSystem._pipe_file, s3fs.S3FileSystem._rm
    async def put(self, path, *args, **kwargs):
        if point == "put" and is_data(path):
            os.kill(os.getpid(), signal.SIGKILL)
        return await original_put(self, path, *args, **kwargs)
    async def rm(self, path, *args, **kwargs):
        if point == "remove" and is_data(path):
            os.kill(os.getpid(), signal.SIGKILL)
        return await original_rm(self, path, *args, **kwargs)
    s3fs.S3FileSystem._pipe_file, s3fs.S3FileSystem._rm = put, rm
    from kis_adapter.cli import main
    sys.exit(main(["convert", capture, "--catalog", uri, "--no-progress"]))
    """
)


def _first_part(capture: Path, out: Path, fraction: float) -> Path:
    """The first `fraction` of a capture's messages as a capture of its own (a recording cut short)."""
    with CaptureReader(capture) as reader:
        header = reader.header
        messages = [(m.ts, m.frame) for m in reader]
    keep = {k: v for k, v in header.items() if k not in ("format", "version")}
    with CaptureWriter(out, header=keep) as writer:
        for ts, frame in messages[: int(len(messages) * fraction)]:
            writer.write_message(ts, frame)
    [path] = writer.paths
    for master in capture.parent.glob("*.mst"):
        (out / master.name).write_bytes(master.read_bytes())
    return path


@pytest.mark.parametrize("point", ["put", "remove"])
def test_interrupted_convert_on_s3_leaves_a_readable_catalog_that_the_next_run_completes(
    point, captures, bucket, s3_env, tmp_path
):
    """kill -9 while a merge is published: the catalog reads, a backtest runs, a rerun completes it."""
    # Arrange: the catalog holds the first part of day A; the full day merges into every chunk
    uri = f"s3://{bucket}/cat"
    partial = _first_part(captures[DAY_A], tmp_path / "partial", 0.6)
    convert_captures([partial], uri)
    before = s3_contents(bucket)
    reference = tmp_path / "reference"
    convert_captures([partial], reference)
    convert_captures([captures[DAY_A]], reference)

    # Act
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CONVERT, point, str(captures[DAY_A]), uri],
        env=s3_env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip

    # Assert: killed mid-publish; every file readable; what a reader sees is old or new data
    assert child.returncode == -9, child.stderr
    after_kill = s3_contents(bucket)  # reads every Parquet object: none is partial
    assert JOURNAL_FILE in " ".join(leftovers(bucket))  # the replacement it was doing is journaled
    if point == "put":
        assert after_kill == before  # nothing published yet
    else:
        assert set(before) <= set(after_kill)  # the old file and its replacement, until recovery
    # a backtest reads it (completing the interrupted replacement first) ...
    result = run_cli(["backtest", "--catalog", uri, "--strategy", GAP, "--report", str(tmp_path / "r"),
                      "--no-chart", "--log-level", "INFO"], s3_env, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[INFO] BACKTESTER-001.BacktestEngine" in result.stdout  # Nautilus logs, never a secret
    assert SECRET_KEY not in result.stdout + result.stderr
    assert JOURNAL_FILE not in " ".join(leftovers(bucket))
    # ... and converting again makes the catalog exactly what an uninterrupted run makes
    convert_captures([captures[DAY_A]], uri)
    assert s3_contents(bucket) == local_contents(reference)
    assert leftovers(bucket) == []


def test_two_converts_of_different_days_at_once_into_one_s3_catalog_both_land(
    captures, local_catalog, bucket, s3_env, tmp_path
):
    """Two convert processes started together, one day each: the catalog holds both, exactly."""
    uri = f"s3://{bucket}/cat"
    kis_adapter = str(Path(sys.executable).with_name("kis-adapter"))
    argv = [
        [kis_adapter, "convert", str(captures[day]), "--catalog", uri, "--no-progress"]
        for day in (DAY_A, DAY_B)
    ]

    procs = [subprocess.Popen(a, env=s3_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for a in argv]  # fmt: skip
    outputs = [p.communicate(timeout=240) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], outputs
    assert s3_contents(bucket) == local_contents(local_catalog)
    assert leftovers(bucket) == []


# -- LEASES (local disk: the same code) ----------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _journaled_replacement(root: Path, run: str) -> tuple[Path, Path, Path]:
    """A replacement left half done by run `run`: merged file written aside, old file still there."""
    directory = root / "data" / "custom_kis_expected_fill" / "A11612.KRX"
    directory.mkdir(parents=True)
    old = directory / "2026-11-23T23-30-00-000000000Z_2026-11-23T23-40-00-000000000Z.parquet"
    target = directory / "2026-11-23T23-30-00-000000000Z_2026-11-23T23-45-00-000000000Z.parquet"
    tmp = Path(f"{target}.{run}.abcd.tmp")
    old.write_bytes(b"old")
    tmp.write_bytes(b"new")
    entry = {"run": run, "tmp": str(tmp), "target": str(target), "replacing": [str(old)]}
    (root / f"{JOURNAL_FILE}-{run}-00000000.json").write_text(json.dumps(entry))
    (root / STAGING_DIR / run).mkdir(parents=True)
    (root / STAGING_DIR / run / "part.parquet").write_bytes(b"staged")
    return old, target, tmp


def _lease(root: Path, run: str, pid: int, host: str | None = None, heartbeat_ns: int | None = None) -> None:
    import time

    (root / LEASE_DIR).mkdir(exist_ok=True)
    lease = {"run": run, "host": host or socket.gethostname(), "pid": pid,
             "heartbeat_ns": heartbeat_ns if heartbeat_ns is not None else time.time_ns()}  # fmt: skip
    (root / LEASE_DIR / f"{run}.json").write_text(json.dumps(lease))


def test_recover_with_live_run_leaves_its_journal_and_files_alone(tmp_path):
    """A concurrent convert (its process alive on this host) is never completed or cleaned by another."""
    old, target, tmp = _journaled_replacement(tmp_path, "live0run0001")
    _lease(tmp_path, "live0run0001", os.getpid())

    assert recover_catalog(tmp_path) == 0

    assert old.exists() and tmp.exists() and not target.exists()
    assert (tmp_path / STAGING_DIR / "live0run0001").is_dir()
    assert (tmp_path / LEASE_DIR / "live0run0001.json").exists()


@pytest.mark.parametrize("lease", ["dead pid", "none", "stale other host"])
def test_recover_with_dead_run_completes_its_replacement_and_removes_its_leftovers(tmp_path, lease):
    """A run that died (dead pid, no lease, a lease from elsewhere long unrefreshed) is completed."""
    old, target, tmp = _journaled_replacement(tmp_path, "dead0run0001")
    if lease == "dead pid":
        _lease(tmp_path, "dead0run0001", _dead_pid())
    elif lease == "stale other host":
        _lease(tmp_path, "dead0run0001", 1, host="elsewhere", heartbeat_ns=1)

    assert recover_catalog(tmp_path) == 1

    assert target.read_bytes() == b"new" and not old.exists() and not tmp.exists()
    assert not list(tmp_path.glob(f"{JOURNAL_FILE}-*"))
    assert not (tmp_path / STAGING_DIR / "dead0run0001").exists()
    assert not (tmp_path / LEASE_DIR / "dead0run0001.json").exists()


def test_recover_with_lease_from_other_host_refreshed_recently_leaves_it_alone(tmp_path):
    """Another machine's convert that refreshed its lease lately is taken as running."""
    old, _, tmp = _journaled_replacement(tmp_path, "remote0run01")
    _lease(tmp_path, "remote0run01", 1, host="elsewhere")

    assert recover_catalog(tmp_path) == 0
    assert old.exists() and tmp.exists()


# -- BAD INPUT -----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _commands(capture: Path, uri: str, tmp: Path) -> dict[str, list[str]]:
    return {
        "convert": ["convert", str(capture), "--catalog", uri, "--no-progress"],
        "backtest": ["backtest", "--catalog", uri, "--strategy", GAP, "--report", str(tmp / "r")],
        "sweep": [
            "sweep",
            "--catalog",
            uri,
            "--strategy",
            GAP,
            "--grid",
            "stop_loss_pct=1,2",
            "--out",
            str(tmp / "s"),
            "--no-progress",
        ],
    }


@pytest.mark.parametrize("command", ["convert", "backtest", "sweep"])
@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("unreachable", "cannot reach the object store at http://127.0.0.1:"),
        ("no bucket", "bucket 'no-such-bucket' does not exist at http://127.0.0.1:"),
        ("no credentials", "no AWS credentials for s3://"),
    ],
)
def test_object_store_problem_is_one_error_line_and_exit_2(
    command, problem, expected, captures, s3_env, monkeypatch, tmp_path, capsys
):
    """A dead endpoint, a missing bucket or no credentials: one actionable line, exit 2, no secret."""
    uri = "s3://no-such-bucket/cat" if problem == "no bucket" else "s3://some-bucket/cat"
    if problem == "unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    if problem == "no credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    code = main(_commands(captures[DAY_A], uri, tmp_path)[command])
    out, err = capsys.readouterr()

    assert code == 2
    [line] = error_lines(err)
    assert expected in line, line
    assert "Traceback" not in err and SECRET_KEY not in out + err and ACCESS_KEY not in out + err
    assert not (tmp_path / "s" / "sweep.csv").exists()
