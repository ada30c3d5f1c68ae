"""The search space of ``nnlit tune``: a YAML file read and checked, a trial's values drawn from it, a study's
trials checked against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from nnlit.optuna_internals import load_optuna


def read_search(path: str | Path) -> dict[str, dict[str, Any]]:
    """The search space of a YAML file: ``{config key: {choices: […]} | {low, high[, log | step]}}``, checked.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a key whose range is not one of the two forms, naming the key and what is accepted.
    """
    text = Path(path).read_text()
    space = yaml.safe_load(text) or {}
    if not isinstance(space, dict) or not space:
        raise ValueError(
            f"The search space {str(path)!r} must map config keys to ranges, e.g. 'model.init_args.lr: "
            "{low: 1.0e-4, high: 0.1, log: true}'"
        )
    for key, spec in space.items():
        form = "{choices: [...]} or {low: ..., high: ...[, log: true | step: ...]}"
        if not isinstance(spec, dict):
            raise ValueError(f"Search key {key!r}: expected {form}, got {spec!r}")
        if "choices" in spec:
            if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
                raise ValueError(f"Search key {key!r}: `choices` must be a non-empty list alone, got {spec!r}")
            continue
        if not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log", "step"}:
            raise ValueError(f"Search key {key!r}: expected {form}, got {spec!r}")
        low, high = spec["low"], spec["high"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or not low < high:
            raise ValueError(f"Search key {key!r}: `low` and `high` must be numbers with low < high, got {spec!r}")
        if spec.get("log") and low <= 0:
            raise ValueError(f"Search key {key!r}: a log range needs low > 0, got {low!r}")
        if spec.get("log") and spec.get("step") not in (None, 1):
            raise ValueError(f"Search key {key!r}: give `log: true` or a `step`, not both (Optuna takes one)")
    return space


def suggest(trial: Any, key: str, spec: dict[str, Any]) -> Any:
    """The trial's value for ``key``: an int range when ``low``, ``high`` (and ``step``) are ints, else a float one."""
    if "choices" in spec:
        # Optuna's choices must be plain values: lists are chosen by their index, as JSON
        labels = [json.dumps(choice) for choice in spec["choices"]]
        return json.loads(trial.suggest_categorical(key, labels))
    low, high, log, step = spec["low"], spec["high"], bool(spec.get("log", False)), spec.get("step")
    if all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int)):
        return trial.suggest_int(key, low, high, step=step or 1, log=log)
    return trial.suggest_float(key, float(low), float(high), log=log, step=step)


def decoded(trial: Any) -> dict[str, Any]:
    """The trial's values as the config takes them (choices are stored as JSON text)."""
    categorical = load_optuna().distributions.CategoricalDistribution
    return {
        key: json.loads(value) if isinstance(trial.distributions.get(key), categorical) else value
        for key, value in trial.params.items()
    }


def check_space(study: Any, space: dict[str, dict[str, Any]], source: str = "the storage") -> None:
    """Refuses a search space whose key changed kind (choices ↔ range) from the study's earlier trials: Optuna cannot
    compare them. Refuses a study whose trials hold a key outside the search space, or ``folds`` / ``std`` attributes
    that are not numbers: a study file is data another person may have written, and a trial's values become
    ``best.yaml``, a config (which is code). ``source``: the study's file or storage, for the message."""
    categorical = load_optuna().distributions.CategoricalDistribution
    for trial in study.get_trials(deepcopy=False):
        for key, distribution in trial.distributions.items():
            if key in space and isinstance(distribution, categorical) != ("choices" in space[key]):
                was = "choices" if isinstance(distribution, categorical) else "a range"
                raise ValueError(
                    f"Search key {key!r} was {was} in the earlier trials of study {study.study_name!r}: a study "
                    "keeps each key's kind; give a new --study or --out for the new space"
                )
    for trial in study.get_trials(deepcopy=False):
        foreign = sorted(set(trial.params) - set(space))
        if foreign:
            raise ValueError(
                f"Trial {trial.number} of study {study.study_name!r} in {source} holds {foreign[0]!r}, which is not a "
                "key of the search space: nnlit tune sets only the search space's keys (a key removed from the space, "
                "or a trial written by something else); give a new --study or --out"
            )
        attrs = trial.user_attrs
        folds = attrs.get("folds", [])
        numbers = [attrs.get("std", 0.0), *(folds if isinstance(folds, list) else [folds])]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            raise ValueError(
                f"Trial {trial.number} of study {study.study_name!r} in {source} holds a `folds` or `std` attribute "
                f"that is not a number ({attrs.get('std', attrs.get('folds'))!r}): something else wrote the study"
            )
