"""``nnlit tune``: hyperparameter search and cross-validation with Optuna, over any key of a config.

    nnlit tune --config base.yaml --search search.yaml [--trials 20] [--folds K] [--workers N] [--key=value …]

The search space is YAML over config keys, each a list of ``choices`` or a range::

    model.init_args.hidden: {choices: [[32], [64, 64]]}
    model.init_args.optimizer.init_args.lr: {low: 1.0e-4, high: 0.1, log: true}
    data.init_args.batch_size: {low: 32, high: 256, step: 32}

Each trial fits the config with the trial's values (and every other ``--key=value`` given to ``nnlit tune``) in this
process, reports the metric each epoch to Optuna's pruner (``MedianPruner``: an unpromising trial stops early), and
scores the best epoch's value; with ``--folds K`` it fits each of the K folds (``TabularDataModule(folds, fold)``) and
scores their mean (the standard deviation is kept with the trial). The study lives in the sweep's folder (``--out``,
default ``<default_root_dir>/tune``): a SQLite file, so rerunning the command continues it, and ``--workers N``
processes share it, running ``--trials`` between them. ``--storage journal:PATH`` keeps it in a journal file on a
shared filesystem (a SLURM array, ``configs/cluster/tune.sbatch``, needs no database server), ``--storage URL`` in a
database (see :mod:`nnlit.tune.storage`). A worker killed mid-trial stops sending heartbeats, and a trial stopped by a
signal is given up: either is marked failed and run again with its values. At the end (or in a ``--finish`` step after
an array): ``best.yaml`` (a complete config for ``nnlit fit --config best.yaml``), ``trials.csv``, pictures (with
matplotlib) and a report.

Needs the ``tune`` extra (optuna). The package's modules, one job each: :mod:`~nnlit.tune.space` (the search space),
:mod:`~nnlit.tune.trial` (one trial's fits, the pruning callback), :mod:`~nnlit.tune.settings` (what every trial of a
study shares), :mod:`~nnlit.tune.storage` (where the study lives, heartbeats, reruns, the budget),
:mod:`~nnlit.tune.worker` (the loop of trials), :mod:`~nnlit.tune.progress` (the terminal's line),
:mod:`~nnlit.tune.outputs` (``best.yaml``, ``trials.csv``, pictures, report), :mod:`~nnlit.tune.command` (the
command).
"""

from nnlit.tune.command import main, parser
from nnlit.tune.outputs import write_outputs
from nnlit.tune.progress import Progress
from nnlit.tune.settings import best_config, check_settings, default_metric, fixed_settings, metric_direction
from nnlit.tune.space import check_space, read_search, suggest
from nnlit.tune.trial import TrialReport, fit_trial
from nnlit.tune.worker import finish, open_study, run_worker

__all__ = [
    "Progress",
    "TrialReport",
    "best_config",
    "check_settings",
    "check_space",
    "default_metric",
    "finish",
    "fit_trial",
    "fixed_settings",
    "main",
    "metric_direction",
    "open_study",
    "parser",
    "read_search",
    "run_worker",
    "suggest",
    "write_outputs",
]
