#!/usr/bin/env bash
# Create the project's virtual environment with a Python >= 3.12, wherever one is installed.
set -euo pipefail
venv="${1:-.venv}"
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
candidates=("${PYTHON:-}" python3.12 python3.13 python3)
for d in "$HOME"/.pyenv/versions/3.12* "$HOME"/.pyenv/versions/3.13* /usr/local/bin /usr/bin; do
  [ -x "$d/bin/python3" ] && candidates+=("$d/bin/python3")
  [ -x "$d/python3.12" ] && candidates+=("$d/python3.12")
done
for c in "${candidates[@]}"; do
  [ -n "$c" ] || continue
  if command -v "$c" >/dev/null 2>&1 && ok "$c"; then
    echo "Creating $venv with $("$c" --version 2>&1) ($c)"
    exec "$c" -m venv "$venv"
  fi
done
echo "error: no Python >= 3.12 found; install one (pyenv install 3.12) or set PYTHON=/path/to/python3.12" >&2
exit 2
