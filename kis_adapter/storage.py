"""
Where a catalog lives: a local directory or an fsspec URI (``s3://bucket/prefix``, ``memory://x``).

`CatalogLocation.parse` is the one place a ``--catalog`` value is read. Credentials and the endpoint
come from the process's own environment (the usual ``AWS_*`` variables, ``AWS_ENDPOINT_URL``
included, or a profile), never from a config file: so a `BacktestRunConfig`, a sweep task or a
report never holds a secret, and a Dask worker uses the credentials of the machine it runs on.

NautilusTrader reads built-in data (trades, books) through its Rust object store, which reads no
environment variable: `StorageBacktestNode` hands it the credentials at the moment it opens a
catalog, in memory only (its configs are logged by NautilusTrader; they must stay clean).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Final

import fsspec
from fsspec.utils import infer_storage_options
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog

from kis_adapter.errors import ConfigError
from kis_adapter.redaction import Redactor

LOCAL_PROTOCOLS: Final = frozenset({"file", "local"})
# Environment variables whose values must never reach a log, a report, a CSV or an error.
SECRET_VARIABLES: Final = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "KIS_APP_KEY", "KIS_APP_SECRET")
_PROBE_RETRIES: Final = 1  # the up-front check fails fast; the work itself keeps s3fs's retries


@dataclass(frozen=True, slots=True)
class CatalogLocation:
    """A catalog root: `protocol` and `path` as fsspec and NautilusTrader take them, `uri` to show."""

    uri: str
    protocol: str
    path: str

    @classmethod
    def parse(cls, text: str | os.PathLike[str]) -> CatalogLocation:
        """A local path (kept as given) or ``protocol://…``; an unknown protocol is a `ConfigError`."""
        value = os.fspath(text)
        if "://" not in value:
            return cls(uri=value, protocol="file", path=value)
        protocol = value.partition("://")[0].lower()
        if protocol in LOCAL_PROTOCOLS:
            path = value.partition("://")[2]
            return cls(uri=value, protocol="file", path=path)
        try:
            fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"--catalog {value}: unsupported storage {protocol!r} ({exc})") from None
        path = infer_storage_options(value)["path"].rstrip("/")
        if protocol in ("s3", "s3a", "gs", "gcs") and not path.split("/", 1)[0]:
            raise ConfigError(
                f"--catalog {value}: no bucket in the URI (expected {protocol}://bucket/prefix)"
            )
        return cls(uri=value.rstrip("/"), protocol="s3" if protocol == "s3a" else protocol, path=path)

    @classmethod
    def of(cls, data: BacktestDataConfig) -> CatalogLocation:
        """The catalog a `BacktestDataConfig` reads."""
        protocol = data.catalog_fs_protocol or "file"
        if protocol in LOCAL_PROTOCOLS:
            return cls.parse(data.catalog_path)
        return cls(uri=f"{protocol}://{data.catalog_path}", protocol=protocol, path=data.catalog_path)

    @classmethod
    def of_catalog(cls, catalog: ParquetDataCatalog) -> CatalogLocation:
        """The location of an open `ParquetDataCatalog`."""
        protocol = catalog.fs_protocol or "file"
        if protocol in LOCAL_PROTOCOLS:
            return cls.parse(catalog.path)
        return cls(uri=f"{protocol}://{catalog.path}", protocol=protocol, path=catalog.path)

    @property
    def is_local(self) -> bool:
        return self.protocol in LOCAL_PROTOCOLS

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    def __str__(self) -> str:
        return self.uri

    def filesystem(self) -> fsspec.AbstractFileSystem:
        """The filesystem, with no listing remembered from earlier (other processes write too)."""
        fs = fsspec.filesystem(self.protocol)
        fs.invalidate_cache()
        return fs

    def join(self, *parts: str) -> str:
        return "/".join([self.path.rstrip("/"), *parts]) if parts else self.path

    def catalog(self) -> ParquetDataCatalog:
        """A `ParquetDataCatalog` for Python-side reads and writes (no Rust credentials needed)."""
        if self.is_local:
            return ParquetDataCatalog(self.path)
        catalog = ParquetDataCatalog(self.path, fs_protocol=self.protocol, fs_storage_options={})
        catalog.fs.invalidate_cache()
        return catalog

    def data_config_fields(self) -> dict[str, Any]:
        """``catalog_path`` (and protocol) for a `BacktestDataConfig`: no credentials, ever."""
        if self.is_local:
            return {"catalog_path": self.path}
        return {"catalog_path": self.path, "catalog_fs_protocol": self.protocol}


def parquet_dirs(location: CatalogLocation, kind_dir: str) -> frozenset[str]:
    """Names of the subdirectories of ``data/<kind_dir>`` holding at least one Parquet file."""
    fs = location.filesystem()
    root = location.join("data", kind_dir)
    try:
        files = fs.glob(f"{root}/*/*.parquet")
    except FileNotFoundError:
        return frozenset()
    except Exception as exc:
        raise ConfigError(storage_problem(exc, location)) from None
    return frozenset(f.rstrip("/").split("/")[-2] for f in files)


def parquet_files(location: CatalogLocation, kind_dir: str | None = None) -> list[str]:
    """Every Parquet file under ``data/`` (or ``data/<kind_dir>``), as paths of the filesystem."""
    fs = location.filesystem()
    root = location.join("data", kind_dir) if kind_dir else location.join("data")
    try:
        return sorted(fs.glob(f"{root}/**/*.parquet"))
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise ConfigError(storage_problem(exc, location)) from None


# -- CHECKS AND ERRORS ---------------------------------------------------------------------------


def check_catalog(location: CatalogLocation, *, write: bool) -> None:
    """
    Fail now, in one line, when the object store cannot be used: no credentials, an endpoint that
    does not answer, a missing bucket, access refused (``write``: a probe object is written and
    removed). Local paths are checked by their callers (`writable_directory_problem`).
    """
    if location.is_local:
        return
    if location.protocol == "s3" and _aws_credentials() is None:
        raise ConfigError(
            f"no AWS credentials for {location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE)"
        )
    fs = _probe_filesystem(location)
    try:
        if location.protocol == "s3":
            try:  # not exists(): s3fs answers False for every failure, an unreachable endpoint too
                fs.ls(location.bucket, detail=False)
            except FileNotFoundError:
                raise ConfigError(
                    f"bucket {location.bucket!r} does not exist at {endpoint_description()} "
                    f"(create it, or check --catalog {location})"
                ) from None
        if write:
            probe = location.join(f".kis-probe-{os.getpid()}-{os.urandom(4).hex()}")
            fs.pipe_file(probe, b"")
            fs.rm(probe)
        else:
            fs.ls(location.path, detail=False)  # reading needs a listing: refused here, not mid-run
    except ConfigError:
        raise
    except FileNotFoundError:
        if write:
            raise ConfigError(storage_problem(FileNotFoundError(location.path), location)) from None
    except Exception as exc:
        raise ConfigError(storage_problem(exc, location)) from None


def _probe_filesystem(location: CatalogLocation) -> fsspec.AbstractFileSystem:
    if location.protocol != "s3":
        return location.filesystem()
    fs = fsspec.filesystem(
        "s3",
        skip_instance_cache=True,
        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 10, "read_timeout": 30},
    )
    fs.retries = _PROBE_RETRIES
    return fs


def storage_problem(exc: BaseException, location: CatalogLocation) -> str:
    """The one-line reason an object-store operation failed, naming what to check (never a secret)."""
    name = type(exc).__name__
    text = redact(str(exc))
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError"):
        return (
            f"cannot reach the object store at {endpoint_description()} for {location} "
            "(check AWS_ENDPOINT_URL and the network)"
        )
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return (
            f"no AWS credentials for {location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE)"
        )
    if isinstance(exc, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return f"access to {location} refused: check the credentials and their permissions ({text})"
    if isinstance(exc, FileNotFoundError) and "bucket" in text.lower():
        return f"bucket {location.bucket!r} does not exist at {endpoint_description()} (check --catalog)"
    return f"object store error on {location}: {name}: {text}"


def endpoint_description() -> str:
    """The S3 endpoint in use, for messages: ``AWS_ENDPOINT_URL`` without any user info, or AWS."""
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        return "AWS S3"
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme else url


def redact(text: str) -> str:
    """`text` without the value of any secret variable of this process's environment."""
    redactor = Redactor(v for v in (os.environ.get(k) for k in SECRET_VARIABLES) if v)
    return redactor(text) if len(redactor) else text


# -- NAUTILUS (RUST OBJECT STORE) ----------------------------------------------------------------


def _aws_credentials() -> Any:
    """botocore's resolved credentials (environment, shared files, profile, instance role), or None."""
    import botocore.session

    return botocore.session.get_session().get_credentials()


def rust_storage_options(protocol: str) -> dict[str, str]:
    """
    What NautilusTrader's Rust object store needs for `protocol`, resolved now from the environment.
    It reads no ``AWS_*`` variable itself and would otherwise ask the instance metadata service.
    """
    if protocol != "s3":
        return {}
    import botocore.session

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        )
    frozen = credentials.get_frozen_credentials()
    options = {
        "access_key_id": frozen.access_key,
        "secret_access_key": frozen.secret_key,
        "region": session.get_config_variable("region") or "us-east-1",
    }
    if frozen.token:
        options["session_token"] = frozen.token
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
        if endpoint.lower().startswith("http://"):
            options["allow_http"] = "true"
    return options


class StorageBacktestNode(BacktestNode):
    """A `BacktestNode` whose catalogs on object storage get this process's credentials on open."""

    @classmethod
    def load_catalog(cls, config: BacktestDataConfig) -> ParquetDataCatalog:
        protocol = config.catalog_fs_protocol or "file"
        if protocol in LOCAL_PROTOCOLS or config.catalog_fs_rust_storage_options:
            return super().load_catalog(config)
        catalog = ParquetDataCatalog(
            path=config.catalog_path,
            fs_protocol=protocol,
            fs_storage_options=config.catalog_fs_storage_options,
            fs_rust_storage_options=rust_storage_options(protocol),
        )
        return catalog  # listings cached since this run's recovery step (which refreshed them) are fine


def kst_days_of(files: list[str]) -> Iterator[str]:
    """The KST trading days (``YYYY-MM-DD``) the catalog files' names start on, each once, sorted."""
    from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps

    from kis_adapter.krx import date_of
    from kis_adapter.krx import kst_day

    days = set()
    for file in files:
        interval = _parse_filename_timestamps(Path(file).name)
        if interval is not None:
            days.add(date_of(kst_day(interval[0])).isoformat())
    yield from sorted(days)
