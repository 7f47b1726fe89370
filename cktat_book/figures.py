"""Figures for the book. matplotlib (and Captum, for attributions) are imported only when a figure is drawn."""

from __future__ import annotations

import numpy as np
import torch

from . import mechanism as theory
from cktat_core.data import DISTRACTOR, FEATURE_1, FEATURE_2, TensorData


def _plt():
    import matplotlib.pyplot as plt  # optional dependency: imported only when drawing

    return plt


def show_images(x: torch.Tensor, titles: list[str] | None = None, ncols: int = 8, stretch: bool = True,
                size: float = 1.4):
    """A grid of images; `stretch` rescales each image to its own min..max so faint patterns are visible."""
    plt = _plt()
    n = len(x)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * (titles is not None)))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i >= n:
            continue
        img = x[i].detach().float().cpu()
        if stretch:
            img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-8)
        ax.imshow(img.permute(1, 2, 0).numpy())
        if titles:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def multiview_examples(data: TensorData, per_group: int = 4):
    """Multi-view samples, single-view samples with feature 1 weak, and with feature 2 weak, a row each."""
    picks, titles = [], []
    for group, label in [("multi_view", "multi-view"), ("weak_f1", "f1 weak"), ("weak_f2", "f2 weak")]:
        idx = torch.nonzero(data.groups[group]).flatten()[:per_group]
        picks += idx.tolist()
        titles += [f"{label}, y={int(data.y[i])}" for i in idx]
    return show_images(data.x[picks], titles, ncols=per_group)


def incentive_map(k1: float = 0.3, theta: float = 1.0, mixture_sum: float = 3.0, steps: int = 101,
                  mark: tuple[float, float] | None = (0.4, 0.8)):
    """Eq. 11 over (mu, k2): where adversarial training gains nothing from learning a second feature."""
    plt = _plt()
    mus = np.linspace(0, 1, steps)
    k2s = np.linspace(0, 1, steps)
    z = np.array([[theory.robust_error_change(m, k1, k2, theta, mixture_sum) for m in mus] for k2 in k2s])
    fig, ax = plt.subplots(figsize=(5, 4))
    lim = np.abs(z).max()
    im = ax.pcolormesh(mus, k2s, z, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="auto")
    ax.contour(mus, k2s, z, levels=[0.0], colors="k", linewidths=1)
    if mark:
        ax.plot(*mark, "k*", markersize=12)
    ax.set_xlabel("fraction of single-view data  $\\mu$")
    ax.set_ylabel("un-purified response of the new feature  $k_2$")
    ax.set_title(f"robust error change when learning the 2nd feature ($k_1$={k1})", fontsize=9)
    fig.colorbar(im, ax=ax, label="$R^2_{robust} - R^1_{robust}$ (>0: no incentive)")
    fig.tight_layout()
    return fig


def grouped_bars(rows: dict[str, dict[str, float]], columns: list[str], labels: dict[str, str] | None = None,
                 ylabel: str = "accuracy (%)", chance: float | None = None):
    """One group of bars per column, one bar per row (e.g. per model)."""
    plt = _plt()
    labels = labels or {}
    names = list(rows)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(1.4 * len(columns) + 2, 3.2))
    xs = np.arange(len(columns))
    for i, name in enumerate(names):
        vals = [rows[name].get(c) or 0.0 for c in columns]
        ax.bar(xs + (i - (len(names) - 1) / 2) * width, vals, width, label=name)
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle=":", linewidth=1, label="chance")
    ax.set_xticks(xs)
    ax.set_xticklabels([labels.get(c, c) for c in columns], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=min(len(names) + 1, 4), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, list[dict]], keys: tuple[str, ...] = ("val_natural",)):
    """Validation accuracy per epoch for several runs."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3))
    for ax, key in zip(np.atleast_1d(axes), keys):
        for name, hist in histories.items():
            pts = [(h["epoch"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " ") + " (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


ROLE_COLOURS = {FEATURE_1: "lime", FEATURE_2: "deepskyblue", DISTRACTOR: "red"}


def _outline_patches(ax, layout: torch.Tensor, size: int, linewidth: float = 1.0) -> None:
    """Boxes around the feature-1 (green), feature-2 (blue) and distractor (red) patches of one image."""
    from matplotlib.patches import Rectangle

    cell = size // layout.shape[-1]
    for (r, c), role in np.ndenumerate(layout.cpu().numpy()):
        if int(role) in ROLE_COLOURS:
            ax.add_patch(Rectangle((c * cell - 0.5, r * cell - 0.5), cell, cell, fill=False,
                                   edgecolor=ROLE_COLOURS[int(role)], linewidth=linewidth))


def attribution_grid(images: torch.Tensor, maps: dict[str, torch.Tensor | None], titles: list[str],
                     layout: torch.Tensor | None = None, method: str = "", percentile: float = 99.5,
                     size: float = 1.3, per_row: bool = False):
    """Table 5 as a figure: the images in the first row, then one row of attribution maps per model, on one
    colour scale shared by every map of the figure (0 to the `percentile` of all their values, so a single
    extreme pixel does not wash the others out); with `per_row`, each model's row divided by the `percentile` of
    its own maps instead (models whose attributions differ in size by orders of magnitude stay visible; brightness
    then compares pixels within a row). With `layout`, the multi-view patches are outlined: own feature 1 green,
    own feature 2 blue, distractors red. A model whose map is None (Grad-CAM without a convolution) gets an empty
    row."""
    plt = _plt()
    pct = lambda ms: float(np.percentile(torch.cat([m.flatten() for m in ms]).numpy(), percentile))
    if per_row:
        maps = {k: None if m is None else m / max(pct([m]), 1e-12) for k, m in maps.items()}
    names = list(maps)
    n = len(images)
    shown = [m for m in maps.values() if m is not None]
    vmax = 1.0 if per_row or not shown else pct(shown)
    fig, axes = plt.subplots(len(names) + 1, n, figsize=(size * n + 1.2, size * (len(names) + 1) + 0.4),
                             squeeze=False)
    im = None
    for j in range(n):
        img = images[j].detach().float().cpu()
        img = (img - img.min()) / (img.max() - img.min()).clamp_min(1e-8)
        axes[0, j].imshow(img.permute(1, 2, 0).numpy())
        axes[0, j].set_title(titles[j], fontsize=7)
        for i, name in enumerate(names, start=1):
            m = maps[name]
            if m is not None:
                im = axes[i, j].imshow(m[j].numpy(), cmap="inferno", vmin=0.0, vmax=max(vmax, 1e-12))
        for i in range(len(names) + 1):
            if layout is not None:
                _outline_patches(axes[i, j], layout[j], images.shape[-1], 1.2 if i == 0 else 0.6)
    for i, label in enumerate(["image"] + names):
        axes[i, 0].set_ylabel(label, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if method:
        fig.suptitle(method, fontsize=9)
    fig.tight_layout()
    if im is not None:
        label = f"attribution / its row's {percentile:g}th percentile" if per_row else "attribution (shared scale)"
        # space taken from every row alike, so the images stay above their maps
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.7, label=label)
    return fig


def sweep_lines(fractions: list[float], panels: dict[str, dict[str, list[float]]], ylabel: str):
    """One panel per measure (e.g. knowledge points inside / outside the feature patches), one line per model,
    against the threshold (a fraction of each image's maximum attribution)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3), squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels.items()):
        for name, values in rows.items():
            ax.plot(fractions, values, marker="o", markersize=3, label=name)
        ax.set_xlabel("threshold (fraction of the image's maximum)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def tradeoff(panels: dict[str, dict], highlight: tuple[str, float, float] | None = None,
             xlabel: str = "natural accuracy (%)", ylabel: str = "robust accuracy (%)", axes=None):
    """Natural (x) against robust (y) accuracy, one panel per source (ours, the paper's).

    panels: {title: {"curves": {name: [(label, natural, robust), ...]}, "points": {name: (natural, robust)}}}: each
    curve a sweep drawn as a line with its points labelled by the swept value, each point (an ablation, a baseline)
    a marker. highlight: (panel title, natural, robust) circles one point (the run chosen in the explorer).
    axes: draw into these (one per panel) instead of a new figure."""
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 5.0), squeeze=False)
        axes = axes[0]
    else:
        fig = axes[0].figure
    markers = ["s", "^", "v", "D", "P", "X", "*", "h"]
    for ax, (title, panel) in zip(axes, panels.items()):
        for name, pts in panel.get("curves", {}).items():
            _, xs, ys = zip(*pts)
            line, = ax.plot(xs, ys, marker="o", markersize=4, label=name)
            for label, x, y in pts:
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7,
                            color=line.get_color())
        for i, (name, (x, y)) in enumerate(panel.get("points", {}).items()):
            ax.plot([x], [y], linestyle="none", marker=markers[i % len(markers)], markersize=7, label=name)
        if highlight is not None and highlight[0] == title:
            ax.plot([highlight[1]], [highlight[2]], linestyle="none", marker="o", markersize=16, markerfacecolor="none",
                    markeredgecolor="black", markeredgewidth=2, label="chosen run")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.margins(0.12)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    return fig


# ---- Table 1: capacity
def capacity_arrows(gaps: dict[str, dict[str, dict[str, tuple[float, float]]]], metrics: list[str],
                    capacity: tuple[str, str] = ("small", "large"), margins: dict | None = None):
    """Table 1 as arrows: one panel per accuracy (`metrics`), one column per method, and per source ("ours",
    "paper") an arrow from the method's gap to PGD-AT on the small student (dot) to its gap on the large one (head).
    An arrow that crosses zero upwards is the paper's claim (hurts the small student, helps the large one).
    `gaps[source][method][metric] = (gap on the small student, gap on the large one)`, in points; `margins`
    (optional, `margins[source][method][metric]`) draws the noise of each end as an error bar."""
    plt = _plt()
    sources = list(gaps)
    methods = list(dict.fromkeys(m for s in sources for m in gaps[s]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.0, 0.9 * len(methods) + 1.5) * len(metrics), 3.4),
                             squeeze=False)
    offset = 0.7 / max(len(sources), 1)
    for ax, metric in zip(axes[0], metrics):
        ax.axhline(0.0, color="gray", linewidth=0.8)
        for i, source in enumerate(sources):
            colour = colours[i % len(colours)]
            label = source  # on the first point the source draws in this panel
            for j, method in enumerate(methods):
                if metric not in gaps[source].get(method, {}):
                    continue
                small, large = gaps[source][method][metric]
                x = j + (i - (len(sources) - 1) / 2) * offset
                err = (margins or {}).get(source, {}).get(method, {}).get(metric)
                if err is not None:
                    ax.errorbar([x, x], [small, large], yerr=[err, err], fmt="none", ecolor=colour, alpha=0.35,
                                capsize=2, linewidth=0.8)
                ax.plot([x], [small], "o", color=colour, markersize=4, label=label)
                label = None
                ax.annotate("", xy=(x, large), xytext=(x, small),
                            arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.4})
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, fontsize=8, rotation=20)
        ax.set_ylabel(f"{metric}: method minus PGD-AT (points)", fontsize=8)
        ax.set_title(f"{metric}: {capacity[0]} (dot) to {capacity[1]} (head)", fontsize=9)
        ax.margins(y=0.15)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---- Table 4, RAAT and DUCAT

def shares_per_epoch(histories: dict[str, list[dict]], prefix: str = "partition_"):
    """Per run, the shares recorded in its history under `prefix` (e.g. RAAT's partition of the training examples
    into misclassified / boundary / rest), stacked per epoch."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3), squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        keys = [k for k in hist[0] if k.startswith(prefix)] if hist else []
        epochs = [h["epoch"] for h in hist]
        ax.stackplot(epochs, *[[100 * h[k] for h in hist] for k in keys], labels=[k[len(prefix):] for k in keys],
                     alpha=0.85)
        ax.set_xlabel("epoch")
        ax.set_ylabel("share of training examples (%)")
        ax.set_ylim(0, 100)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def seed_scatter(ours: dict[str, list[tuple[float, float]]], paper: dict[str, tuple[float, float]],
                 xlabel: str = "natural accuracy (%)", ylabel: str = "robust accuracy (%)"):
    """Natural (x) against robust (y) accuracy per method: our seeds as small markers with their mean as a large one
    (left), the paper's single numbers (right); the same colour for a method in both panels. The two panels have
    their own scales: the question is where the methods lie relative to each other."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.2, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, pts) in enumerate(ours.items()):
        c = colours[i % len(colours)]
        xs, ys = zip(*pts)
        left.plot(xs, ys, linestyle="none", marker="o", markersize=5, alpha=0.6, color=c)
        left.plot([np.mean(xs)], [np.mean(ys)], linestyle="none", marker="D", markersize=10, color=c,
                  label=f"{name} (mean of {len(pts)})")
        if name in paper:
            right.plot([paper[name][0]], [paper[name][1]], linestyle="none", marker="D", markersize=10, color=c,
                       label=name)
    for ax, title in ((left, "ours (each seed, and the mean)"), (right, "the paper")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.margins(0.25)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---- the budget ladder (chapter 10)
def ladder(rows: list[dict], epochs: dict[str, int], band: dict[str, float | None], attack_rung: str | None = None):
    """One panel per headline difference and accuracy (`budget.ladder_rows`: "difference", "accuracy", a value per
    rung and "paper"): ours against the student's epochs (`epochs`: rung -> epochs), the `paper` profile's attack at
    the profile's epochs as its own marker (`attack_rung`), the paper's difference as a dashed line, and, around the
    1x value, the band a change must leave to exceed the run-to-run noise (`band`: accuracy label -> half-width). A rung
    whose value is None (its runs have not landed) is left out of its panel; the x axis keeps every rung's epochs."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(11.5, 6.2), squeeze=False)
    pairs = list(dict.fromkeys(r["difference"] for r in rows))
    labels = list(dict.fromkeys(r["accuracy"] for r in rows))
    for row in rows:
        ax = axes[labels.index(row["accuracy"])][pairs.index(row["difference"])]
        rungs = [k for k in epochs if row.get(k) is not None]
        ax.plot([epochs[k] for k in rungs], [row[k] for k in rungs], marker="o", color="C0", label="ours, by epochs")
        xs = [epochs[k] for k in epochs if k in row]
        half = band.get(row["accuracy"])
        if half:
            ax.axhspan(row["1x"] - half, row["1x"] + half, color="C0", alpha=0.12, label="noise of a change from 1x")
        if attack_rung and row.get(attack_rung) is not None:
            ax.plot([epochs["1x"]], [row[attack_rung]], marker="*", markersize=12, linestyle="none", color="C3",
                    label="ours, the paper profile's attack")
        ax.axhline(row["paper"], linestyle="--", color="black", linewidth=1, label="the paper")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_title(f"{row['difference']}, {row['accuracy']}", fontsize=9)
        ax.set_xlabel("student epochs")
        ax.set_ylabel("difference (points)")
    legend = {}  # every panel's entries, once each: a panel whose runs have not all landed lacks some
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(name, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
