#!/usr/bin/env bash
# Sets up the environment and runs the performance benchmarks (about 15 minutes on 2 cores): throughput against a
# hand-written loop and scikit-learn, the callbacks' overhead, the step hooks' cost, thread choice, small fits,
# scaling, peak memory, start-up time, Predictor's rows/s and the sweeps' machinery (bench/tune.py).
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(bash scripts/setup_env.sh | tail -n 1)"
bin="$(dirname "$py")"
export PATH="$bin:$PATH"  # the nnlit command of this environment, for bench/startup.py
"$py" bench/throughput.py 2>/dev/null  # stderr: the progress bars of the default-settings runs
"$py" bench/hooks.py 2>/dev/null
"$py" bench/threads.py 2>/dev/null
"$py" bench/small.py 2>/dev/null
"$py" bench/sklearn_api.py 2>/dev/null  # skorch's row only where skorch is installed (the bench extra)
(cd bench && "$py" scaling.py 2>/dev/null)
"$py" bench/memory.py
"$py" bench/startup.py
"$py" bench/predict.py 2>/dev/null  # stderr: Lightning's checkpoint-loading notes
"$py" bench/tune.py --parts cost workers 2>/dev/null  # the sweeps' quality part takes an hour: docs/sweeps.md
if "$py" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  "$py" bench/gpu.py 2>/dev/null  # on a CUDA device only: 1M rows on the device against a hand-written CUDA loop
fi
