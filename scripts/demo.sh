#!/usr/bin/env bash
# The main job: set up, train the quick-start model, report its validation metrics, write predictions.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(bash scripts/setup_env.sh | tail -n 1)"
nnlit="$(dirname "$py")/nnlit"
config=configs/quickstart.yaml
ckpt=best  # the best checkpoint of the newest run under runs/quickstart (each run keeps its own)

"$nnlit" fit --config "$config"
"$nnlit" validate --config "$config" --ckpt_path "$ckpt" --trainer.enable_progress_bar=false
"$nnlit" predict --config "$config" --ckpt_path "$ckpt" --trainer.enable_progress_bar=false \
  --prediction_writer.output_path runs/quickstart/predictions.csv
echo
echo "First predictions (runs/quickstart/predictions.csv):"
head -n 6 runs/quickstart/predictions.csv
