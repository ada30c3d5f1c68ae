"""``nnlit tune``: what its machinery costs, what a second worker buys, and what a sweep wins on the real tables.

    python bench/tune.py [--parts cost workers quality] [--trials 20] [--folds 5] [--seeds 1] [--first-seed 0]
                         [--datasets iris wine breast_cancer diabetes] [--epochs N] [--pictures DIR]

- **cost**: a sweep of the quick start (``--trials`` trials, the shipped search space, 1,000 rows, 10 epochs) run by
  ``nnlit tune`` in a process of its own, against a plain loop in one process that fits the same trials' values, each
  for the epochs its trial ran (a pruned trial stopped early), with the same command-line arguments ``nnlit tune``
  gives each fit. Both are timed from the process's start to its end (interpreter start and imports included in both),
  so the difference is the machinery: Optuna, the study in SQLite, heartbeats, pruning checks, the outputs
  (``best.yaml``, ``trials.csv``, the pictures); a third run of the same seeded sweep without its outputs shows
  what they take. Target: at most 10 % over the loop.
- **workers**: the same sweep with ``--workers 1`` and ``--workers 2`` (each worker chooses its threads). Target on a
  2-core machine: 2 workers take at most 0.6x the time of 1. As pruning can make the two sweeps train different
  numbers of epochs, the time per trained epoch is printed too, and the machine's floor: two plain torch loops run at
  once against one alone (how two processes share these cores) and a worker's start-up, which bound the ratio.
- **quality**: on each real table and each of ``--seeds`` seeds from ``--first-seed``, bench/quality.py's split
  (``TabularDataModule(seed=seed)``, 60 / 20 / 20): a sweep of ``--trials`` trials with ``--folds``-fold
  cross-validation over the training and validation rows (the test rows are held out before the folds are cut) with
  the shipped search space (``configs/search/real/<name>``);
  then the config it picks (``best.yaml``) is trained on the training rows, its epoch with the best validation loss
  kept, and scored on the test rows, as bench/quality.py scores the shipped config and scikit-learn's models. Prints
  the test accuracy (R² for diabetes) of each, per split as it ends and their mean and spread per table.
  ``--pictures DIR`` copies the first sweep's pictures there.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

#: the sweep the cost and workers parts time: the quick start, smaller
SWEEP = ["--config", "quickstart", "--search", "quickstart", "--data.init_args.n_samples=1000"]
SWEEP_EPOCHS = 10


def sweep_command(out: Path, trials: int, workers: int, epochs: int) -> list[str]:
    command = [sys.executable, "-m", "nnlit.cli", "tune", *SWEEP, f"--trainer.max_epochs={epochs}"]
    return [*command, "--trials", str(trials), "--workers", str(workers), "--seed", "0", "--out", str(out)]


def timed(command: list[str], cwd: Path) -> float:
    """Seconds ``command`` took, from its process's start to its end."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def trained_epochs(out: Path) -> list[tuple[dict[str, Any], int]]:
    """Each finished trial of the sweep in ``out``: its values as the config takes them, and the epochs it ran."""
    import optuna

    from nnlit.tune.space import decoded

    study = optuna.load_study(study_name="nnlit", storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    return [(decoded(t), len(t.intermediate_values)) for t in done]


def plain_loop(out: Path, loop_root: Path) -> None:
    """Fits the trials of the sweep in ``out`` one after another in this process, with the arguments nnlit tune gives
    each fit (nnlit/tune/trial.py, ``fit_trial``), and no Optuna."""
    import json

    from nnlit import example_configs
    from nnlit.cli import build

    config = example_configs.resolve("quickstart")
    for number, (params, epochs) in enumerate(trained_epochs(out)):
        values = [f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in params.items()]
        args = ["--config", config, *SWEEP[4:], f"--trainer.max_epochs={epochs}", *values]
        args += [f"--trainer.default_root_dir={loop_root / f'trial_{number}'}", "--report=false"]
        args += ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
        cli = build(args)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)


def cost(trials: int, epochs: int, work: Path) -> None:
    out = work / "cost"
    tune_seconds = timed(sweep_command(out, trials, 1, epochs), work)
    loop = [sys.executable, str(Path(__file__).resolve()), "--loop-of", str(out), "--loop-root", str(work / "loop")]
    loop_seconds = timed(loop, work)
    # the same sweep again without its outputs (best.yaml, trials.csv, the pictures): the trials' own machinery
    bare_seconds = timed([*sweep_command(work / "bare", trials, 1, epochs), "--no-outputs"], work)
    if trained_epochs(work / "bare") != trained_epochs(out):
        print("  (note: the run without outputs trained other trials than the first: compare its time loosely)")
    fits = trained_epochs(out)
    print(f"cost: {len(fits)} fits of the quick start (1,000 rows), {sum(e for _, e in fits)} epochs in all")
    print(f"  plain loop in one process   {loop_seconds:7.2f} s")
    print(f"  nnlit tune, 1 worker        {tune_seconds:7.2f} s   {100 * (tune_seconds / loop_seconds - 1):+6.1f} %")
    print(f"    without its outputs       {bare_seconds:7.2f} s   {100 * (bare_seconds / loop_seconds - 1):+6.1f} %")
    overhead = 100 * (tune_seconds / loop_seconds - 1)
    verdict = "meets" if overhead <= 10 else "MISSES"
    print(f"  machinery: {overhead:+.1f} % of the loop ({verdict} the 10 % target)\n")


#: a plain torch loop (the quick start's net on 1,000 rows, one thread), the work a worker's trial does
LOOP = """
import sys, time, torch
torch.set_num_threads(1)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                          torch.nn.Linear(64, 3))
opt = torch.optim.Adam(net.parameters())
x, y = torch.randn(1000, 20), torch.randint(0, 3, (1000,))
start = time.perf_counter()
for epoch in range(int(sys.argv[1])):
    for i in range(0, 1000, 64):
        loss = torch.nn.functional.cross_entropy(net(x[i : i + 64]), y[i : i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
print(time.perf_counter() - start)
"""


def machine_floor(epochs: int = 150) -> tuple[float, float]:
    """What this machine allows two workers: the time two plain torch loops take when run at once, over the time one
    takes alone (1.0 on two free cores), and the seconds a worker takes to start (``import nnlit.tune.command``)."""
    command = [sys.executable, "-c", LOOP, str(epochs)]
    alone = min(float(subprocess.run(command, capture_output=True, text=True, check=True).stdout) for _ in range(2))
    pairs = []
    for _ in range(2):
        both = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        pairs.append(max(float(process.communicate()[0]) for process in both))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import nnlit.tune.command"], check=True)
    return min(pairs) / alone, time.perf_counter() - start


def workers(trials: int, epochs: int, work: Path) -> None:
    scale, startup = machine_floor()
    rows = []
    for count in (1, 2):
        out = work / f"workers_{count}"
        seconds = timed(sweep_command(out, trials, count, epochs), work)
        rows.append((count, seconds, sum(e for _, e in trained_epochs(out))))
    print(f"workers: {trials} trials of the quick start (1,000 rows, at most {epochs} epochs each)")
    for count, seconds, trained in rows:
        print(
            f"  {count} worker(s)   {seconds:7.2f} s   {trained:4d} epochs   {1000 * seconds / trained:6.1f} ms/epoch"
        )
    ratio, per_epoch = rows[1][1] / rows[0][1], (rows[1][1] / rows[1][2]) / (rows[0][1] / rows[0][2])
    verdict = "meets" if ratio <= 0.6 else "MISSES"
    print(f"  2 workers / 1 worker: {ratio:.2f}x the time ({verdict} the 0.6x target), {per_epoch:.2f}x per epoch")
    # the floor: the start-up is paid once either way, the rest shared by two processes at the machine's own scaling
    floor = (startup + (rows[0][1] - startup) * scale / 2) / rows[0][1]
    print(f"  this machine: two torch loops at once take {scale:.2f}x the time of one alone (1.00 on two free cores);")
    print(f"  a worker starts in {startup:.1f} s; so 2 workers can at best take {floor:.2f}x the time of 1 here\n")


def tuned_score(name: str, seed: int, trials: int, folds: int, epochs: int | None, work: Path) -> tuple[float, Path]:
    """The test score of the config a sweep picks on the training and validation rows of seed ``seed``'s split."""
    from nnlit.cli import main

    out = work / f"sweep_{name}_{seed}"
    fixed = [f"--seed_everything={seed}", f"--data.init_args.seed={seed}", "--trainer.logger=false"]
    fixed += [f"--trainer.max_epochs={epochs}"] if epochs else []
    args = ["tune", "--config", f"real/{name}", "--search", f"real/{name}", "--trials", str(trials)]
    args += ["--folds", str(folds), "--seed", str(seed), "--out", str(out), *fixed]
    with contextlib.redirect_stdout(io.StringIO()):
        main(args)
    return test_score(str(out / "best.yaml"), seed, epochs, work / f"refit_{name}_{seed}"), out


def test_score(config: str, seed: int, epochs: int | None, workdir: Path) -> float:
    """As bench/quality.py scores a config: trained on the split's training rows, its best-val/loss epoch tested."""
    from nnlit.cli import build

    args = ["--config", config, f"--seed_everything={seed}", f"--data.init_args.seed={seed}"]
    args += [f"--trainer.default_root_dir={workdir}", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]
    args += ["--trainer.enable_model_summary=false", *([f"--trainer.max_epochs={epochs}"] if epochs else [])]
    with contextlib.redirect_stdout(io.StringIO()):  # Lightning's and nnlit's lines about the fit
        cli = build(args)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        (result,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    return float(result["test/r2" if cli.datamodule.num_classes is None else "test/acc"])


def quality(
    datasets: list[str],
    seeds: int,
    trials: int,
    folds: int,
    epochs: int | None,
    work: Path,
    pictures: Path | None,
    first_seed: int = 0,
) -> None:
    from quality import sklearn_scores

    from nnlit import example_configs

    splits = range(first_seed, first_seed + seeds)
    print(f"quality: {trials}-trial sweeps with {folds}-fold cross-validation, splits of seeds {list(splits)}")
    print(f"{'data set':<14} {'metric':<8} {'model':<28} {'mean':>7} {'std':>7}")
    for name in datasets:
        scores: dict[str, list[float]] = {}
        for seed in splits:
            shipped = example_configs.resolve(f"real/{name}")
            scores.setdefault("shipped config", []).append(test_score(shipped, seed, epochs, work / f"{name}_{seed}"))
            tuned, out = tuned_score(name, seed, trials, folds, epochs, work)
            scores.setdefault("tuned config", []).append(tuned)
            if pictures is not None:
                pictures.mkdir(parents=True, exist_ok=True)
                for picture in out.glob("*.png"):
                    shutil.copyfile(picture, pictures / f"tune_{name}_{picture.name}")
                pictures = None  # the first sweep's only
            with tempfile.TemporaryDirectory() as split:
                from nnlit.cli import build

                with contextlib.redirect_stdout(io.StringIO()):
                    cli = build(
                        ["--config", shipped, f"--data.init_args.seed={seed}", f"--trainer.default_root_dir={split}"]
                    )
                cli.datamodule.setup("fit")
                for model, value in sklearn_scores(cli.datamodule, seed).items():
                    scores.setdefault(model, []).append(value)
            split_scores = "   ".join(f"{model} {values[-1]:.3f}" for model, values in scores.items())
            print(f"{name:<14} split of seed {seed}: {split_scores}", flush=True)
        metric = "R²" if "sklearn Ridge" in scores else "accuracy"
        for model, values in scores.items():
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"{name:<14} {metric:<8} {model:<28} {statistics.mean(values):>7.3f} {std:>7.3f}")
        gain = 100 * (statistics.mean(scores["tuned config"]) - statistics.mean(scores["shipped config"]))
        print(f"{name:<14} tuned - shipped: {gain:+.1f} points\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", choices=["cost", "workers", "quality"], default=["cost", "workers", "quality"]
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=1, help="splits per table in the quality part")
    parser.add_argument("--first-seed", type=int, default=0, help="the quality part's first split (seed)")
    parser.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer", "diabetes"])
    parser.add_argument("--epochs", type=int, default=None, help="cap every fit's epochs (a quick try of the bench)")
    parser.add_argument("--pictures", type=Path, default=None, help="where to copy the first sweep's pictures")
    parser.add_argument("--loop-of", type=Path, default=None, help=argparse.SUPPRESS)  # the cost part's plain loop
    parser.add_argument("--loop-root", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.loop_of is not None:
        plain_loop(args.loop_of, args.loop_root)
        return
    epochs = args.epochs or SWEEP_EPOCHS
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if "cost" in args.parts:
            cost(args.trials, epochs, work)
        if "workers" in args.parts:
            workers(args.trials, epochs, work)
        if "quality" in args.parts:
            quality(
                args.datasets, args.seeds, args.trials, args.folds, args.epochs, work, args.pictures, args.first_seed
            )


if __name__ == "__main__":
    main()
