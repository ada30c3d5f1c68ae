#!/usr/bin/env bash
# The package as a user gets it: builds the sdist and wheel (python -m build), checks their metadata (twine check),
# installs the wheel (not editable) in a fresh virtual environment outside the repository and runs the quick start
# from the installed package's shipped config. Run by CI (.ci/run); about 2 minutes, most of it installing.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(bash scripts/setup_env.sh | tail -n 1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$py" -m build --outdir "$work/dist" . >/dev/null
"$py" -m twine check --strict "$work"/dist/*
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet -r requirements/torch-cpu.txt  # the CPU build, as setup_env.sh does
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/nnlit-*.whl
shipped="$(find configs -type f | sed 's#^configs/##' | LC_ALL=C sort)"
cd "$work"  # no repository files in sight: nnlit and its configs come from the installed package
# every file of configs/ is in the installed package
installed="$("$work/venv/bin/python" -c "
import nnlit.example_configs as e
print('\n'.join(sorted(p.relative_to(e.FOLDER).as_posix() for p in e.FOLDER.rglob('*') if p.is_file())))")"
[ "$shipped" = "$installed" ] || { echo "check_package: the wheel's configs differ from configs/" >&2; exit 1; }
"$work/venv/bin/nnlit" fit --config quickstart --trainer.max_epochs=2 --trainer.enable_progress_bar=false >/dev/null
last="runs/quickstart/lightning_logs/version_0/checkpoints/last.ckpt"
test -s "$last" || { echo "check_package: the quick start wrote no $last" >&2; exit 1; }
"$work/venv/bin/python" -c "import nnlit, sys; print('installed wheel: nnlit', nnlit.__version__, 'ran the quick start')"
