#!/usr/bin/env bash
# Sets up the environment and regenerates the README's pictures, docs/pictures/*.png, by training the lessons.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(bash scripts/setup_env.sh | tail -n 1)"
"$py" scripts/pictures.py
