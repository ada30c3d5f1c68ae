#!/usr/bin/env bash
# Prepares the Python environment nnlit runs in, from this repository's own files:
#   - uses the active virtual environment, or creates ./.venv;
#   - installs torch from requirements/torch-cpu.txt unless some torch is already installed (a CUDA build is kept);
#   - installs nnlit in editable mode with the dev extra (tests, lint, CSV/Parquet support).
# Prints the path of the environment's python on its last line. Re-running is cheap: nothing is reinstalled
# while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${VIRTUAL_ENV:-}" ]; then
  py="$VIRTUAL_ENV/bin/python"
else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  py="$PWD/.venv/bin/python"
fi

stamp="$("$py" -c 'import sys; print(sys.prefix)')/.nnlit-installed"
# nnlit is looked up, not imported: importing it (Lightning, torch) would cost every `make` target seconds
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] ||
  ! "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('nnlit') is None)" 2>/dev/null; then
  "$py" -m pip install --quiet --upgrade pip >&2
  if ! "$py" -c "import torch" 2>/dev/null; then
    "$py" -m pip install --quiet -r requirements/torch-cpu.txt >&2
  fi
  "$py" -m pip install --quiet -e ".[dev]" >&2
  touch "$stamp"
fi
echo "$py"
