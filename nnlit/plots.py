"""Pictures of a run (needs the ``plots`` extra, matplotlib).

- :func:`plot_training_curves`: loss and the main metric per epoch, train against validation;
- :func:`plot_decision_boundary`: for 2-feature classification data, the model over the plane;
- :func:`plot_dead_units`: a units × epochs heatmap per ReLU layer, from :class:`~nnlit.callbacks.DeadReLUCounter`;
- :func:`plot_gradients`: gradient norms per layer (log scale) and saturation, from
  :class:`~nnlit.callbacks.GradientSaturationMonitor`.

Each ``plot_*`` writes a PNG and returns its path; each ``*_figure`` returns the matplotlib figure instead. The
:class:`~nnlit.callbacks.SavePlots` callback draws them at the end of a fit, and ``nnlit plot RUN_DIR`` from a
finished run.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import torch

from nnlit import quiet, safe_write
from nnlit.checkpoint_io import read_checkpoint
from nnlit.runs import find_fit_run, run_checkpoint_to_draw

#: where the plotting area sits in the figure, as (left, bottom, width, height) fractions: fixed, so that a pixel of
#: the saved PNG can be traced back to a point of the plane (the tests read pictures back this way)
AXES_BOX = (0.1, 0.1, 0.8, 0.8)
#: pixels per inch of the saved PNGs
DPI = 100


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("Plotting needs matplotlib: pip install 'nnlit[plots]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_metrics_csv(metrics_csv: str | Path) -> dict[str, dict[int, float]]:
    """The epoch-level values of a CSVLogger ``metrics.csv``, as ``{name: {epoch: value}}``.

    Raises:
        FileNotFoundError: naming the file.
        ValueError: naming the file, the line and the column of a value that is not a number (an epoch that is not a
            whole number), or a file that is not UTF-8 text.
    """
    path = Path(metrics_csv)
    if not path.is_file():
        raise FileNotFoundError(f"No metrics file at {str(path)!r} (written by the CSVLogger of a run)")
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{str(path)!r} is not a CSV file a CSVLogger wrote: {err}") from None
    series: dict[str, dict[int, float]] = {}
    for line, row in enumerate(rows, start=2):
        for key, value in row.items():
            if value and key not in ("epoch", "step") and row.get("epoch"):
                if not isinstance(key, str) or not isinstance(value, str):
                    raise ValueError(f"{str(path)!r}, line {line}: more values than columns")
                if key.endswith("_step"):
                    continue
                epoch = _number(row["epoch"], path, line, "epoch")
                if not epoch.is_integer() or epoch < 0:
                    raise ValueError(f"{str(path)!r}, line {line}, column 'epoch': {row['epoch']!r} is not an epoch")
                series.setdefault(key.removesuffix("_epoch"), {})[int(epoch)] = _number(value, path, line, key)
    return series


def _number(text: str, path: Path, line: int, column: str) -> float:
    """A metrics.csv value as a float, or a ValueError naming where it is."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{str(path)!r}, line {line}, column {column!r}: {text[:40]!r} is not a number") from None


def plot_training_curves(metrics: str | Path | dict[str, dict[int, float]], out: str | Path) -> Path:
    """Loss and the main metric (accuracy, else R²) per epoch, train against validation.

    Args:
        metrics: a CSVLogger ``metrics.csv``, or ``{name: {epoch: value}}`` (what :func:`read_metrics_csv` returns).
        out: the PNG to write.

    Raises:
        FileNotFoundError: naming a missing file.
        ValueError: when there is no ``train/loss`` or ``val/loss``.
    """
    series = metrics if isinstance(metrics, dict) else read_metrics_csv(metrics)
    if "train/loss" not in series and "val/loss" not in series:
        where = "these metrics" if isinstance(metrics, dict) else repr(str(metrics))
        raise ValueError(f"{where} have no train/loss or val/loss: were they logged by an nnlit run?")
    return save_figure(curves_figure(series), out)


def curves_figure(series: dict[str, dict[int, float]]) -> Any:
    """The figure of :func:`plot_training_curves`, not yet saved."""
    metric = next((m for m in ("acc", "r2") if f"val/{m}" in series or f"train/{m}" in series), None)
    plt = _pyplot()
    names = ["loss", metric] if metric else ["loss"]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for stage, style in (("train", "-"), ("val", "--")):
            points = dict(sorted(series.get(f"{stage}/{name}", {}).items()))
            if points:
                ax.plot(
                    list(points), list(points.values()), style, marker="." if len(points) < 30 else None, label=stage
                )
        _epoch_axis(ax)
        ax.set_title(str(name))
        ax.legend()
    fig.tight_layout()
    return fig


def plot_dead_units(history: list[dict[str, Any]], out: str | Path) -> Path:
    """A heatmap per ReLU layer of :class:`~nnlit.callbacks.DeadReLUCounter`'s history: units down, epochs across,
    dark where a unit never fired during that epoch.

    Raises:
        ValueError: when the history holds no per-unit record (no epoch ended, or no ReLU layer was found).
    """
    return save_figure(dead_units_figure(history), out)


def dead_units_figure(history: list[dict[str, Any]]) -> Any:
    """The figure of :func:`plot_dead_units`, not yet saved."""
    entries = [h for h in history if h.get("dead_units")]
    if not entries:
        raise ValueError(
            "No per-unit record in this DeadReLUCounter history: did a training epoch end with a ReLU "
            "layer in the model?"
        )
    layers = list(entries[-1]["dead_units"])
    epochs = [h["epoch"] for h in entries]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers) + 0.8, 4), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        width = entries[-1]["dead_units"][layer].numel()
        grid = torch.full((width, len(entries)), float("nan"))
        for column, entry in enumerate(entries):
            mask = entry["dead_units"].get(layer)
            if mask is not None and mask.numel() == width:
                grid[:, column] = mask.float()
        ax.imshow(
            grid.numpy(),
            aspect="auto",
            interpolation="nearest",
            cmap="Greys",
            vmin=0,
            vmax=1,
            extent=(epochs[0] - 0.5, epochs[-1] + 0.5, width - 0.5, -0.5),
        )
        ax.set_title(f"{layer}: {int(grid[:, -1].nansum())}/{width} dead", fontsize=9)
        _epoch_axis(ax)
        ax.set_ylabel("unit")
    fig.suptitle("units that never fired (black)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_gradients(history: list[dict[str, Any]], out: str | Path) -> Path:
    """Per-layer gradient norms per epoch (log scale), and, where the model has sigmoid / tanh layers, their
    saturated fraction, from :class:`~nnlit.callbacks.GradientSaturationMonitor`'s history.

    Raises:
        ValueError: when the history has no gradient norm.
    """
    return save_figure(gradients_figure(history), out)


def gradients_figure(history: list[dict[str, Any]]) -> Any:
    """The figure of :func:`plot_gradients`, not yet saved."""
    norms: dict[str, dict[int, float]] = {}
    saturation: dict[str, dict[int, float]] = {}
    for entry in history:
        for name, value in entry.get("grad_norm", {}).items():
            norms.setdefault(name, {})[entry["epoch"]] = value
        for name, value in entry.get("saturation", {}).items():
            saturation.setdefault(name, {})[entry["epoch"]] = value
    if not norms:
        raise ValueError("No gradient norm in this GradientSaturationMonitor history: did a training epoch end?")
    plt = _pyplot()
    panels = 2 if saturation else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 3.8), squeeze=False)
    ax = axes[0][0]
    colours = plt.get_cmap("viridis")
    for i, (name, points) in enumerate(norms.items()):  # first layer dark, last layer light: depth reads as colour
        ax.plot(
            list(points),
            [max(v, 1e-30) for v in points.values()],
            marker=".",
            label=name,
            color=colours(i / max(len(norms) - 1, 1)),
        )
    ax.set_yscale("log")
    _epoch_axis(ax)
    ax.set_title("mean gradient norm per weight")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if saturation:
        ax = axes[0][1]
        for name, points in saturation.items():
            ax.plot(list(points), list(points.values()), marker=".", label=name)
        ax.set_ylim(-0.02, 1.02)
        _epoch_axis(ax)
        ax.set_title("saturated fraction of outputs")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_decision_boundary(model: torch.nn.Module, datamodule: Any, out: str | Path, resolution: int = 200) -> Path:
    """The model's prediction over the plane, with the training points on top; for 2-feature classification data.

    Binary: the probability of class 1 from red (0) to blue (1). Multiclass: each class its colour, paler where the
    model is less sure. ``datamodule`` is a set-up :class:`~nnlit.TabularDataModule` (its scaler is applied).

    Raises:
        ValueError: when the data does not have exactly 2 features or is not classification.
    """
    return save_figure(decision_boundary_figure(model, datamodule, resolution), out)


@torch.no_grad()
def decision_boundary_figure(model: torch.nn.Module, datamodule: Any, resolution: int = 200) -> Any:
    """The figure of :func:`plot_decision_boundary`, not yet saved."""
    table = datamodule.table
    if table.x.shape[1] != 2:
        raise ValueError(f"A decision boundary is drawn for 2 features; the data has {table.x.shape[1]}")
    if table.classes is None:
        raise ValueError("A decision boundary needs classification data; this data module poses regression")
    rows = datamodule.split_indices("train")
    train, labels = table.x[rows], table.y[rows]
    low, high = train.min(dim=0).values, train.max(dim=0).values
    pad = 0.05 * (high - low)
    xs = torch.linspace(float(low[0] - pad[0]), float(high[0] + pad[0]), resolution)
    ys = torch.linspace(float(low[1] - pad[1]), float(high[1] + pad[1]), resolution)
    grid = torch.cartesian_prod(ys, xs).flip(1)  # rows run over y, columns over x
    was_training = model.training
    model.eval()
    outputs = model(datamodule.transform(grid).to(next(model.parameters()).device)).cpu()
    model.train(was_training)

    plt = _pyplot()
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_axes(AXES_BOX)
    extent = (float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1]))
    num_classes = len(table.classes)
    if num_classes == 2 and outputs.shape[1] == 1:
        field = torch.sigmoid(outputs).view(resolution, resolution)
        ax.imshow(field.numpy(), origin="lower", extent=extent, cmap="RdBu", vmin=0, vmax=1, aspect="auto")
        colours = labels.float().numpy()
        ax.scatter(*train.T.numpy(), c=colours, cmap="RdBu", vmin=0, vmax=1, s=6, edgecolors="k", linewidths=0.2)
    else:
        probabilities = torch.softmax(outputs, dim=1)
        palette = plt.get_cmap("tab10")
        rgb = torch.tensor([palette(i % 10)[:3] for i in range(num_classes)])
        confidence, winner = probabilities.max(dim=1)
        colour = (rgb[winner] * confidence[:, None] + (1 - confidence[:, None])).clamp(0, 1)  # paler where unsure
        ax.imshow(colour.view(resolution, resolution, 3).numpy(), origin="lower", extent=extent, aspect="auto")
        ax.scatter(*train.T.numpy(), c=rgb[labels].numpy(), s=6, edgecolors="k", linewidths=0.2)
    names = datamodule.feature_names or ["x1", "x2"]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    return fig


def _epoch_axis(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def save_figure(fig: Any, out: str | Path) -> Path:
    """Writes a figure as a PNG (creating its folder), closes it, and returns the path."""
    path = Path(out)
    try:
        with safe_write.replacing(path) as new:  # a link planted at `path` is replaced, not followed
            fig.savefig(new, dpi=DPI)
    finally:
        _pyplot().close(fig)
    return path


def figure_rgb(fig: Any) -> Any:
    """The figure's pixels as a ``(height, width, 3)`` uint8 array, as saved (for TensorBoard's ``add_image``)."""
    import numpy as np

    fig.set_dpi(DPI)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def draws_boundary(datamodule: Any) -> bool:
    """Whether :func:`plot_decision_boundary` applies: an nnlit data module with classes and 2 numeric features (no
    categorical or was-missing column: the plane is drawn over the two numbers)."""
    from nnlit.data.tabular import TabularDataModule

    return (
        isinstance(datamodule, TabularDataModule)
        and datamodule.num_classes is not None
        and datamodule.num_features == 2
        and not datamodule.categorical_features
        and not datamodule.indicators
    )


def plot_run(run_dir: str | Path, ckpt_path: str | Path | None = None, out: str | Path | None = None) -> list[Path]:
    """Draws the pictures of a finished ``nnlit fit`` run, as :class:`~nnlit.callbacks.SavePlots` does at fit end.

    Args:
        run_dir: the run's log directory (``…/lightning_logs/version_N``, holding ``metrics.csv`` and the
            ``config.yaml`` the ``nnlit`` command saved), or a folder above it (the newest run that trained is taken:
            :func:`nnlit.runs.find_fit_run`).
        ckpt_path: the checkpoint for the model and the monitors' histories; by default ``last.ckpt`` (else the newest
            ``.ckpt``) of the run's ``checkpoints/`` folder or of the folders its ``ModelCheckpoint``s wrote to.
            Without one, only the training curves are drawn.
        out: the folder for the PNG files; by default ``<run_dir>/plots``.

    Returns:
        The paths written: ``curves.png``, and with a checkpoint ``decision_boundary.png`` (2-feature
        classification), ``dead_units.png`` (a ``DeadReLUCounter`` was used), ``gradients.png`` (a
        ``GradientSaturationMonitor`` was used).

    Raises:
        FileNotFoundError: when ``run_dir`` has no ``metrics.csv`` (naming what was searched), or ``ckpt_path`` does
            not exist.
    """
    log_dir = find_fit_run(run_dir)
    folder = Path(out) if out is not None else log_dir / "plots"
    config = log_dir / "config.yaml"
    checkpoint_file = Path(ckpt_path) if ckpt_path is not None else run_checkpoint_to_draw(log_dir)
    if checkpoint_file is not None and not checkpoint_file.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(checkpoint_file)!r}")
    checkpoint = None if checkpoint_file is None else read_checkpoint(checkpoint_file, map_location="cpu")

    written = [plot_training_curves(log_dir / "metrics.csv", folder / "curves.png")]
    if checkpoint is None or checkpoint_file is None:
        print(f"No checkpoint found for {str(log_dir)!r}: drew the training curves only (pass --ckpt_path)")
        return written
    for key, state in checkpoint.get("callbacks", {}).items():
        history = state.get("history") if isinstance(state, dict) else None
        if key.startswith("DeadReLUCounter") and history and any(h.get("dead_units") for h in history):
            written.append(plot_dead_units(history, folder / "dead_units.png"))
        if key.startswith("GradientSaturationMonitor") and history and any(h.get("grad_norm") for h in history):
            written.append(plot_gradients(history, folder / "gradients.png"))
    saved = _read_run_config(config)
    datamodule = _data_from_run_config(saved)
    if datamodule is not None and draws_boundary(datamodule):
        from nnlit.checkpoint import load
        from nnlit.models.base import MLPModule

        datamodule.setup("fit")
        # the class the run's config names (a user's own one included); the checkpoint is read as checked data
        model_class = _class_in(saved.get("model"), MLPModule)
        model = load(checkpoint_file, cls=model_class)
        written.append(plot_decision_boundary(model, datamodule, folder / "decision_boundary.png"))
    return written


def _read_run_config(config: Path) -> dict[str, Any]:
    """The ``config.yaml`` that ``nnlit fit`` saved in a run's log directory ({} when there is none). It is the run's
    own config: code, as every config is (see the README's "Trust")."""
    import yaml

    saved = yaml.safe_load(config.read_text()) if config.is_file() else None
    return saved if isinstance(saved, dict) else {}


def _class_in(section: Any, base: type) -> Any:
    """The class a config section (``{"class_path": …}``) names, when it is a subclass of ``base``; else ``None``."""
    from nnlit.trust import find_class

    found = find_class(str(section.get("class_path")), importing=True) if isinstance(section, dict) else None
    return found if isinstance(found, type) and issubclass(found, base) else None


def _data_from_run_config(saved: dict[str, Any]) -> Any:
    """The data module of a run, from its config; ``None`` when it is not an nnlit data module."""
    from nnlit.data.tabular import TabularDataModule

    data = saved.get("data")
    cls = _class_in(data, TabularDataModule)
    if cls is None or not isinstance(data, dict):
        return None
    init_args = dict(data.get("init_args") or {})
    if init_args.get("seed") is None and isinstance(saved.get("seed_everything"), int):
        init_args["seed"] = saved["seed_everything"]  # the split of the run, which seed_everything gave it
    return cls(**init_args)


def main(args: list[str] | None = None) -> None:
    """``nnlit plot RUN_DIR [--ckpt_path CKPT] [--out DIR]``: see :func:`plot_run`."""
    parser = quiet.CommandParser(
        prog="nnlit plot",
        description="Draw the pictures of a finished nnlit fit as PNG files: training curves, and from its checkpoint "
        "the decision boundary (2-feature classification), dead units (DeadReLUCounter) and gradient norms "
        "(GradientSaturationMonitor).",
    )
    parser.add_argument("run_dir", help="the run's log directory (lightning_logs/version_N) or a folder above it")
    parser.add_argument("--ckpt_path", default=None, help="default: last.ckpt (or the newest) of the run")
    parser.add_argument("--out", default=None, help="folder for the PNG files (default: RUN_DIR/plots)")
    options = parser.parse_args(args)
    # an error goes up to the command (nnlit.cli.main), which ends it with one line `nnlit: error: …`
    log_dir = find_fit_run(options.run_dir)
    if log_dir != Path(options.run_dir):
        print(
            f"nnlit plot: drawing {log_dir}, the newest run below {options.run_dir} with training metrics in a "
            "metrics.csv",
            file=sys.stderr,
        )
    written = plot_run(log_dir, options.ckpt_path, options.out)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
