"""What a fresh clone promises: ignored output folders, cited documents that exist, facts in the docs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout"
)
@pytest.mark.parametrize(
    "path", ["captures/kis-20261124-083001.jsonl.gz", "catalog/data/x.parquet", "out/demo"]
)
def test_gitignore_with_readme_output_folders_ignores_them(path):
    """The folders the README's commands write into (captures/, catalog/, out/) are ignored by git."""
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, timeout=30, check=False)
    assert result.returncode == 0, f"{path} is not ignored"


def test_package_docstrings_cite_only_documents_in_the_repo():
    """Every ``*.md`` a module of kis_adapter names exists in the repository."""
    cited = set()
    for module in (ROOT / "kis_adapter").rglob("*.py"):
        cited.update(re.findall(r"[\w./-]+\.md\b", module.read_text(encoding="utf-8")))
    assert cited, "expected at least the README to be cited"
    missing = sorted(name for name in cited if not (ROOT / name).is_file())
    assert missing == []


def test_docs_say_which_record_the_official_samples_keep():
    """README, frames.py: the current official sample keeps a frame's last record, the legacy its first."""
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    frames = " ".join((ROOT / "kis_adapter" / "protocol" / "frames.py").read_text(encoding="utf-8").split())
    for text in (readme, frames):
        assert "official" in text
        assert re.search(r"current official KIS sample.{0,60}? keeps (only )?the last", text)
        assert re.search(r"legacy sample[^.]* the first", text)
