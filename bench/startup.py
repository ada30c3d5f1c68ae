"""Start-up cost of the ``nnlit`` command against importing Lightning alone, measured in the same run.

    python bench/startup.py [--repeats 7]

Each command runs in a fresh interpreter, ``--repeats`` times in turn (A B C A B C …, so a drift of the machine's
speed touches each alike); the table gives each command's fastest and median wall time and its median's ratio to
``python -c "import lightning"`` (the target: ``nnlit --help`` and ``--print_config`` within 1.5× of it). The command
runs as ``python -m nnlit.cli``, so ``PYTHONPATH`` chooses the code measured. Also lists which heavy optional packages
each loads (Lightning imports matplotlib, scipy and rich itself when they are installed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("pandas", "pyarrow", "matplotlib", "sklearn", "scipy", "optuna", "onnx", "rich")

BASELINE = "python -c 'import lightning'"


def commands() -> dict[str, list[str]]:
    nnlit = [sys.executable, "-m", "nnlit.cli"]
    return {
        BASELINE: [sys.executable, "-c", "import lightning"],
        "python -c 'import nnlit'": [sys.executable, "-c", "import nnlit"],
        "nnlit --help": [*nnlit, "--help"],
        "nnlit fit --config quickstart --print_config": [*nnlit, "fit", "--config", "quickstart", "--print_config"],
    }


def loaded_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint('LOADED', ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return done.stdout.rsplit("LOADED", 1)[1].split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args()
    rows = commands()
    times: dict[str, list[float]] = {name: [] for name in rows}
    for command in rows.values():  # a warm-up of each: the files are in the page cache for every counted run
        subprocess.run(command, check=True, capture_output=True)
    for _ in range(options.repeats):
        for name, command in rows.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    baseline = statistics.median(times[BASELINE])
    print(f"| {'command':<46} | {'min s':>6} | {'median s':>8} | {'× import lightning':>18} |")
    print(f"| {'-' * 46} | {'-' * 5}: | {'-' * 7}: | {'-' * 17}: |")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"| {name:<46} | {min(seconds):>6.2f} | {median:>8.2f} | {median / baseline:>18.2f} |")
    print(f"\n{options.repeats} runs each, in turn; target: nnlit --help and --print_config <= 1.5x import lightning")
    help_call = "from nnlit.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    for name, statement in (
        ("import lightning", "import lightning"),
        ("import nnlit", "import nnlit"),
        ("nnlit --help", help_call),
    ):
        print(f"loaded by `{name}`: {', '.join(loaded_after(statement)) or 'none'}")


if __name__ == "__main__":
    main()
