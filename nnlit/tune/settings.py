"""What every trial of a study trains and is scored with besides its searched values: the metric and its direction,
the base config with the command's overrides, ``--folds``; stored with a new study and checked when one continues.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from nnlit.config_keys import parse_overrides, set_key


def default_metric(config: str) -> tuple[str, str]:
    """``val/loss`` minimised for a regression head (a ``class_path`` ending in ``RegressionMLP``), else ``val/acc``
    maximised; read from the config's text, importing nothing."""
    model = (yaml.safe_load(Path(config).read_text()) or {}).get("model") or {}
    name = str(model.get("class_path", "") if isinstance(model, dict) else model)
    return ("val/loss", "minimize") if name.endswith("RegressionMLP") else ("val/acc", "maximize")


#: the metrics whose direction is known: the last part of the name (``val/mae`` → ``mae``)
MINIMIZED = ("loss", "mae", "mse", "rmse", "error")


MAXIMIZED = ("acc", "accuracy", "f1", "r2", "auroc", "precision", "recall")


def metric_direction(metric: str) -> str:
    """``minimize`` or ``maximize`` for a metric nnlit's heads log.

    Raises:
        ValueError: another metric, asking for ``--direction``.
    """
    name = metric.rsplit("/", 1)[-1]
    if name in MINIMIZED:
        return "minimize"
    if name in MAXIMIZED:
        return "maximize"
    raise ValueError(f"--metric {metric!r}: say whether to maximize or minimize it with --direction")


def best_config(config: str, overrides: Sequence[str], params: dict[str, Any]) -> dict[str, Any]:
    """The base config with the command's ``--key=value`` overrides and the best trial's values set."""
    tree = yaml.safe_load(Path(config).read_text()) or {}
    for key, value in [*parse_overrides(overrides), *params.items()]:
        set_key(tree, key, value, where=repr(config))
    return tree


def study_source(options: argparse.Namespace) -> str:
    """The study's file (``--out``'s ``study.db``), or ``--storage`` without the password a URL may hold."""
    if options.storage is None:
        return repr(str(Path(options.out) / "study.db"))
    return repr(re.sub(r"//[^/@]*@", "//", options.storage))


def fixed_settings(options: argparse.Namespace, overrides: Sequence[str]) -> dict[str, Any]:
    """What every trial of a study trains and is scored with besides its searched values: the base config with the
    command's ``--key=value`` overrides set, ``--folds``, ``--metric`` and ``--direction`` (as JSON would give them
    back from the storage)."""
    settings = {
        "config": best_config(options.config, overrides, {}),
        "folds": options.folds,
        "metric": options.metric,
        "direction": options.direction,
    }
    return json.loads(json.dumps(settings))


def check_settings(study: Any, options: argparse.Namespace, overrides: Sequence[str]) -> None:
    """Stores the fixed settings with a new study (its user attribute ``settings``); refuses to continue a study
    with other ones, naming each difference: its trials would not be comparable, and ``best.yaml`` would not say how
    the best trial was trained.

    Raises:
        ValueError: the study was started with other settings; the message names each key, its value then and now.
    """
    settings = fixed_settings(options, overrides)
    if "settings" not in study.user_attrs:
        study.set_user_attr("settings", settings)
    stored = study.user_attrs["settings"]  # read back: another worker may have stored its own first
    then, now = _flat(stored), _flat(settings)
    unset = object()
    shown = {
        key: [json.dumps(v) if v is not unset else "unset" for v in (then.get(key, unset), now.get(key, unset))]
        for key in then.keys() | now.keys()
    }
    changed = [f"{_flag(key)}: {was} then, {is_} now" for key, (was, is_) in sorted(shown.items()) if was != is_]
    if changed:
        raise ValueError(
            f"Study {study.study_name!r} was started with other fixed settings than this command's: "
            f"{'; '.join(changed)}. Rerun with the study's settings to continue it, or give a new --study (or --out) "
            "to start a new study with these"
        )


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one mapping of dotted keys (lists are values)."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _flag(key: str) -> str:
    """A settings key as the command line writes it: ``config.trainer.max_epochs`` → ``--trainer.max_epochs``."""
    return f"--{key.removeprefix('config.')}"
