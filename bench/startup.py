"""Start-up cost: ``import nnlit`` and ``nnlit --help`` against importing torch and lightning alone.

    python bench/startup.py [--repeats 3]

Each command runs in a fresh interpreter; the fastest of ``--repeats`` runs counts. Also lists which heavy optional
packages are loaded by ``import nnlit`` (pandas and pyarrow are imported by nnlit only to read a file, matplotlib only
to draw; lightning and torchmetrics import matplotlib and scipy themselves when they are installed).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

HEAVY = ("pandas", "pyarrow", "matplotlib", "sklearn", "scipy")


def wall(command: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    nnlit_command = shutil.which("nnlit") or "nnlit"
    rows = [
        ("python -c 'import torch'", [sys.executable, "-c", "import torch"]),
        ("python -c 'import lightning'", [sys.executable, "-c", "import lightning"]),
        ("python -c 'import nnlit'", [sys.executable, "-c", "import nnlit"]),
        ("nnlit --help", [nnlit_command, "--help"]),
    ]
    print(f"| {'command':<30} | {'seconds':>7} |")
    print(f"| {'-' * 30} | {'-' * 6}: |")
    for name, command in rows:
        print(f"| {name:<30} | {wall(command, options.repeats):>7.2f} |")
    print(f"\nloaded by `import lightning`: {', '.join(loaded_after('import lightning')) or 'none'}")
    print(f"loaded by `import nnlit`:     {', '.join(loaded_after('import nnlit')) or 'none'}")


if __name__ == "__main__":
    main()
