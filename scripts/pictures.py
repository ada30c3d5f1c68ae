"""Regenerates the README's pictures (docs/pictures/*.png) by training the lessons: `make pictures`.

Each config runs as `nnlit fit` would run it (its SavePlots callback draws at fit end), in a temporary folder; the
pictures named below are copied to docs/pictures/<config>_<picture>.png. About a minute on two CPU cores.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "pictures"

#: config (under configs/) -> the pictures of its run that the README shows
PICTURES = {
    "quickstart": ["curves", "decision_boundary"],
    "demos/xor_linear": ["decision_boundary"],
    "demos/xor_hidden": ["decision_boundary"],
    "demos/vanishing_sigmoid": ["gradients"],
    "demos/vanishing_relu": ["gradients"],
    "demos/dead_relu": ["dead_units"],
    "demos/dead_leaky_relu": ["dead_units"],
}


def main() -> None:
    from nnlit.cli import main as nnlit

    OUT.mkdir(parents=True, exist_ok=True)
    for config, names in PICTURES.items():
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)  # the configs write under runs/…, relative to the working directory
            nnlit(
                [
                    "fit",
                    "--config",
                    str(ROOT / "configs" / f"{config}.yaml"),
                    "--trainer.enable_progress_bar=false",
                    "--report=false",
                ]
            )
            for name in names:
                (found,) = Path(folder).glob(f"runs/**/plots/{name}.png")
                target = OUT / f"{config.rpartition('/')[2]}_{name}.png"
                shutil.copyfile(found, target)
                print(target.relative_to(ROOT), file=sys.stderr)
        os.chdir(ROOT)


if __name__ == "__main__":
    main()
