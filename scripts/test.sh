#!/usr/bin/env bash
# Sets up the environment and runs the default test suite (doctests included), then ruff and mypy.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` or `bash scripts/test.sh tests/nn`.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(bash scripts/setup_env.sh | tail -n 1)"
"$py" -m pytest "$@"
"$py" -m ruff check .
"$py" -m mypy nnlit
