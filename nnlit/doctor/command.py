"""``nnlit doctor --config X [--key=value ...] [--budget S] [--format json] [--write-config PATH] [--out DIR]``.

Exit status: 0 when healthy (no error or warning), 1 when an error or warning was found, 2 when the config cannot
run (one line ``nnlit: error: …``, as every ``nnlit`` command).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from nnlit import safe_write
from nnlit.config_keys import parse_overrides as _pairs
from nnlit.config_keys import set_key
from nnlit.doctor import BUDGET, Diagnosis, diagnose
from nnlit.doctor.report import render, write_pictures

DESCRIPTION = (
    "Diagnoses a training run: the table, the config, the initialisation, one small batch, a short fit with the "
    "monitors; each fix is verified by a rerun. Any other --key=value is a config override, as `nnlit fit` takes it."
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nnlit doctor", description=DESCRIPTION)
    p.add_argument("--config", "-c", required=True, help="a config file or a shipped config's name (as `nnlit fit`)")
    p.add_argument("--budget", type=float, default=BUDGET, help=f"seconds to spend (default {BUDGET:g})")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (a ranked report) or json")
    p.add_argument("--write-config", metavar="PATH", help="write the config with every verified fix applied")
    p.add_argument("--out", metavar="DIR", default=None, help="the folder of the pictures (the plots extra)")
    p.add_argument("--no-verify", action="store_true", help="do not rerun the fixes (they are then unverified)")
    p.add_argument("--seed", type=int, default=0, help="the seed of the probe fits")
    return p


def main(argv: Sequence[str]) -> None:
    """Runs ``nnlit doctor``; ends with ``SystemExit`` (0 healthy, 1 findings, 2 the config cannot run)."""
    options, overrides = parser().parse_known_args(list(argv))
    bad = [arg for arg in overrides if not arg.startswith("--")]
    if bad:
        raise ValueError(f"nnlit doctor takes config overrides as --key=value, got {bad[0]!r}")
    if options.budget <= 0:
        raise ValueError(f"`--budget` must be a positive number of seconds, got {options.budget!r}")
    if options.write_config is not None and Path(options.write_config).is_dir():
        raise ValueError(f"`--write-config` must be a file path, got the folder {options.write_config!r}")
    from nnlit import example_configs

    config = example_configs.resolve(options.config)
    try:
        diagnosis = diagnose(config, overrides, budget=options.budget, verify=not options.no_verify, seed=options.seed)
    except Exception as err:  # the config cannot run: the command's one-line error, status 2
        if os.environ.get("NNLIT_DEBUG", "") not in ("", "0") or "--debug" in sys.argv:
            raise
        from nnlit.command_errors import explain

        sys.stderr.write(f"nnlit: error: {explain(err)[0]}\n(--debug or NNLIT_DEBUG=1 shows the traceback)\n")
        raise SystemExit(2) from None
    written = []
    if options.write_config:
        written.append(write_config(config, overrides, diagnosis, options.write_config))
    out = Path(options.out) if options.out else None
    if out is not None:
        written += write_pictures(diagnosis, out)
    if options.format == "json":
        print(json.dumps(diagnosis.to_dict()))
    else:
        print(render(diagnosis, options.config, overrides, written))
    raise SystemExit(0 if diagnosis.healthy else 1)


def write_config(config: str, overrides: Sequence[str], diagnosis: Diagnosis, path: str) -> str:
    """Writes ``config`` with ``overrides`` and every verified fix applied, as a YAML file ``nnlit fit`` trains."""
    tree = yaml.safe_load(Path(config).read_text()) or {}
    for key, value in [*_pairs(overrides), *diagnosis.fixes().items()]:
        set_key(tree, key, value)
    fixed = ", ".join(f.kind for f in diagnosis.findings if f.fix and f.verified and f.verified.get("helped"))
    header = f"# nnlit doctor: {config} with the verified fixes of: {fixed or 'nothing (no verified fix)'}\n"
    safe_write.write_text(path, header + yaml.safe_dump(tree, sort_keys=False))  # a planted link is replaced
    return path
