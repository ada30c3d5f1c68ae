"""Writes the error catalogue the docs include (``docs/figures/errors.md``): each bad-input case of
``tests/test_bad_input.py`` run through the ``nnlit`` command, with the one line it ends with.

    python scripts/docs_errors.py [--out docs/figures/errors.md]

``tests/test_bad_input.py`` checks each case's message against this file (numbers aside), so a changed message fails
the tests until the catalogue is rewritten with this script.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "figures" / "errors.md"


def normalise(text: str, folder: Path) -> str:
    """``text`` with the scratch folder written ``DIR`` and the repository's root left out."""
    return text.replace(str(folder), "DIR").replace(f"{ROOT}/", "")


def run_case(name: str) -> tuple[str, str]:
    """The command line (without the options every case shares) and the message of case ``name``."""
    from test_bad_input import CASES, QUICK

    from nnlit.cli import main

    make, _ = CASES[name]
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        os.chdir(folder)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                args = make(folder)
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                try:
                    main(args)
                except SystemExit:
                    pass
        finally:
            os.chdir(here)
        shown = [arg for arg in args if arg not in QUICK]
        message = next(line for line in err.getvalue().splitlines() if line.startswith("nnlit"))
        return normalise(f"nnlit {' '.join(shown)}", folder), normalise(message, folder)


def write(out: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_bad_input import CASES

    parts = [
        "<!-- Written by scripts/docs_errors.py from tests/test_bad_input.py; rerun it rather than editing. -->",
        "Each case below also takes the quick start's options (`--config configs/quickstart.yaml "
        "--trainer.max_epochs=1 …`); `DIR` is the folder the case ran in.",
    ]
    for name in sorted(CASES, key=str.lower):
        command, message = run_case(name)
        parts.append(f"### {name}\n\n```text\n$ {command}\n{message}\n```")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(parts) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    write(parser.parse_args().out)


if __name__ == "__main__":
    main()
