#!/usr/bin/env bash
# The main job: set up, train the quick-start model, report its validation metrics, write predictions.
# scripts/demo.py runs `nnlit fit`, `nnlit validate` and `nnlit predict` (each printed before it runs) in one Python
# process, so Lightning's import and start-up are paid once.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(bash scripts/setup_env.sh | tail -n 1)"
exec "$py" scripts/demo.py "$@"
