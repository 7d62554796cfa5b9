"""Output directories: created up front and proven writable, so a bad path fails before any work."""

from __future__ import annotations

import tempfile
from pathlib import Path


def writable_directory_problem(path: Path, what: str) -> str | None:
    """Create `path` if needed; return a one-line problem if it cannot be written into, else None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"{what} path is not a directory: {path}"
    except OSError as exc:
        return f"cannot create {what} directory {path}: {exc.strerror or exc}"
    try:  # a real write, not os.access(): root passes access() on read-only filesystems
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        return f"{what} directory is not writable: {path} ({exc.strerror or exc})"
    return None
