"""Pictures of a run: training curves and, for 2-D data, the decision boundary (needs the ``plots`` extra)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

#: where the plotting area sits in the figure, as (left, bottom, width, height) fractions: fixed, so that a pixel of
#: the saved PNG can be traced back to a point of the plane (the tests read pictures back this way)
AXES_BOX = (0.1, 0.1, 0.8, 0.8)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("Plotting needs matplotlib: pip install 'nnlit[plots]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(metrics_csv: str | Path, out: str | Path) -> Path:
    """Loss and the main metric per epoch, train against validation, from a CSVLogger ``metrics.csv``.

    Raises:
        FileNotFoundError: naming the file.
        ValueError: when the file has no epoch-level ``train/loss`` or ``val/loss``.
    """
    path = Path(metrics_csv)
    if not path.is_file():
        raise FileNotFoundError(f"No metrics file at {str(path)!r} (written by the CSVLogger of a run)")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    series: dict[str, dict[int, float]] = {}
    for row in rows:
        for key, value in row.items():
            if value and key not in ("epoch", "step"):
                series.setdefault(key, {})[int(float(row["epoch"]))] = float(value)
    if "train/loss" not in series and "val/loss" not in series:
        raise ValueError(f"{str(path)!r} has no train/loss or val/loss column: was it written by an nnlit run?")
    metric = next((m for m in ("acc", "r2") if f"val/{m}" in series or f"train/{m}" in series), None)
    plt = _pyplot()
    panels = 2 if metric else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.5), squeeze=False)
    for ax, name in zip(axes[0], ["loss", metric][:panels]):
        for stage, style in (("train", "-"), ("val", "--")):
            points = series.get(f"{stage}/{name}", {})
            if points:
                ax.plot(list(points), list(points.values()), style, label=stage)
        ax.set_xlabel("epoch")
        ax.set_title(str(name))
        ax.legend()
    fig.tight_layout()
    return _save(fig, out)


@torch.no_grad()
def plot_decision_boundary(model: torch.nn.Module, datamodule: Any, out: str | Path, resolution: int = 200) -> Path:
    """The model's prediction over the plane, with the training points on top; for 2-feature classification data.

    Binary: the probability of class 1 from red (0) to blue (1). Multiclass: each class its colour, paler where the
    model is less sure. ``datamodule`` is a set-up :class:`~nnlit.TabularDataModule` (its scaler is applied).

    Raises:
        ValueError: when the data does not have exactly 2 features or is not classification.
    """
    table = datamodule._load()
    if table.x.shape[1] != 2:
        raise ValueError(f"A decision boundary is drawn for 2 features; the data has {table.x.shape[1]}")
    if table.classes is None:
        raise ValueError("A decision boundary needs classification data; this data module poses regression")
    train = table.x[datamodule._splits["train"]] if datamodule._splits else table.x
    labels = table.y[datamodule._splits["train"]] if datamodule._splits else table.y
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
        colour = rgb[winner] * confidence[:, None] + (1 - confidence[:, None])  # paler where unsure
        ax.imshow(colour.view(resolution, resolution, 3).numpy(), origin="lower", extent=extent, aspect="auto")
        ax.scatter(*train.T.numpy(), c=rgb[labels].numpy(), s=6, edgecolors="k", linewidths=0.2)
    names = datamodule.feature_names or ["x1", "x2"]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    return _save(fig, out)


def _save(fig: Any, out: str | Path) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path
