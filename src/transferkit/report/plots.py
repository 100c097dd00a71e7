"""Plots (matplotlib, Agg backend, imported lazily): t-SNE of domains, training curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_tsne", "plot_history", "tsne_embed"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def tsne_embed(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of ``features`` (PCA to 50 dimensions first when wider)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    X = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if X.shape[1] > 50:
        X = PCA(50, random_state=seed).fit_transform(X)
    perplexity = min(perplexity, (len(X) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)


def plot_tsne(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: str | Path,
    labels: tuple[np.ndarray, np.ndarray] | None = None,
    domain_names: tuple[str, str] = ("source", "target"),
    seed: int = 0,
) -> Path:
    """Side-by-side t-SNE panels of source (blue) and target (red) features.

    Parameters
    ----------
    panels : sequence of (title, source_features, target_features)
        One panel each, e.g. ``[("before adaptation", ...), ("after adaptation", ...)]``.
    path : path
        Where to write the PNG.
    labels : (y_source, y_target), optional
        Class labels, drawn as digits/markers so class clusters can be seen to align.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.5), squeeze=False)
    for ax, (title, fs, ft) in zip(axes[0], panels, strict=True):
        Z = tsne_embed(np.concatenate([fs.reshape(len(fs), -1), ft.reshape(len(ft), -1)]), seed)
        zs, zt = Z[: len(fs)], Z[len(fs) :]
        if labels is not None and labels[1] is not None and len(np.unique(labels[0])) <= 10:
            classes = np.unique(np.concatenate([labels[0], labels[1]]))
            for z, y, color in ((zs, labels[0], "tab:blue"), (zt, labels[1], "tab:red")):
                for c in np.unique(y):
                    m = y == c
                    # digits are drawn as themselves; other labels as their index among the classes
                    mark = int(c) if np.issubdtype(classes.dtype, np.integer) else int(np.searchsorted(classes, c))
                    ax.scatter(z[m, 0], z[m, 1], s=14, c=color, marker=f"${mark}$", alpha=0.6, linewidths=0)
            for color, name in zip(("tab:blue", "tab:red"), domain_names, strict=True):
                ax.scatter([], [], c=color, s=20, label=name)
        else:
            ax.scatter(zs[:, 0], zs[:, 1], s=5, c="tab:blue", alpha=0.5, label=domain_names[0])
            ax.scatter(zt[:, 0], zt[:, 1], s=5, c="tab:red", alpha=0.5, label=domain_names[1])
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(histories: dict[str, list[dict[str, float]]], keys: Sequence[str], path: str | Path) -> Path:
    """Per-epoch curves of ``keys`` for several runs (one line per run, one panel per key)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for run, hist in histories.items():
            xs = [h["epoch"] for h in hist if key in h]
            ys = [h[key] for h in hist if key in h]
            if xs:
                ax.plot(xs, ys, marker=".", label=run)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
