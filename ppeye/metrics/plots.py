"""ROC, precision-recall and reliability figures (matplotlib, written as PNG atomically)."""
import io

import numpy as np
from sklearn import metrics as skm

from ..core.io import atomic_write
from ..data.ukb.fields import disease_title
from .multilabel import DISEASES


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    """Render ``fig`` once as PNG, write it atomically; returns the PNG's bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with atomic_write(path, mode="wb") as f:
        f.write(buf.getvalue())
    return buf.getvalue()


def curves_figure(kind, y_true, y_prob, title, names=DISEASES, calibration=None):
    """One panel per disease for ``kind`` in {'roc', 'pr', 'calibration'}, two panels a row (legible
    at the size a dashboard card shows them); returns the figure."""
    plt = _figure()
    ncols = min(2, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for j, (ax, name) in enumerate(zip(axes.flat, names)):
        t, p = y_true[:, j], y_prob[:, j]
        both = 0 < t.sum() < len(t)
        if kind == "roc" and both:
            fpr, tpr, _ = skm.roc_curve(t, p)
            ax.plot(fpr, tpr, lw=1.5, label=f"AUC {skm.roc_auc_score(t, p):.3f}")
            ax.plot([0, 1], [0, 1], "k:", lw=0.8)
            ax.set_xlabel("1 - specificity")
            ax.set_ylabel("sensitivity")
        elif kind == "pr" and both:
            precision, recall, _ = skm.precision_recall_curve(t, p)
            ax.step(recall, precision, where="post", lw=1.5, label=f"AP {skm.average_precision_score(t, p):.3f}")
            ax.axhline(t.mean(), color="k", ls=":", lw=0.8, label=f"prevalence {t.mean():.3f}")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
        elif kind == "calibration":
            rows = [r for r in (calibration or []) if r["disease"] == name]
            if rows:
                ax.plot([r["mean_predicted"] for r in rows], [r["observed_rate"] for r in rows], "o-", ms=3)
                top = max(max(r["mean_predicted"] for r in rows), max(r["observed_rate"] for r in rows)) * 1.05
                ax.plot([0, top], [0, top], "k:", lw=0.8)
            ax.set_xlabel("mean predicted risk")
            ax.set_ylabel("observed rate")
        if not both:
            ax.text(0.5, 0.5, "one class only", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(disease_title(name), fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "upper right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def decision_curve_figure(curves, title, names=DISEASES):
    """Net benefit of the model vs treat-all and treat-none over the threshold probabilities,
    one panel per disease; ``curves`` {disease: net_benefit(...) dict}."""
    plt = _figure()
    ncols = min(2, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        c = curves.get(name)
        if c is not None:
            ax.plot(c["threshold"], c["model"], lw=1.5, label="model")
            ax.plot(c["threshold"], c["treat_all"], "k--", lw=0.8, label="treat all")
            ax.axhline(0, color="k", ls=":", lw=0.8, label="treat none")
            top = max(float(np.max(c["model"])), float(np.max(c["treat_all"])), 0.01)
            ax.set_ylim(-0.25 * top, 1.1 * top)
            ax.legend(fontsize=7, loc="upper right")
        else:
            ax.text(0.5, 0.5, "one class only", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("threshold probability")
        ax.set_ylabel("net benefit")
        ax.set_title(disease_title(name), fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig, path, image=False):
    """Write ``fig`` as PNG atomically and close it; with ``image``, return the written picture as
    an RGB uint8 array [H, W, 3] (decoded from the file's bytes: the figure is drawn once)."""
    plt = _figure()
    png = _save(fig, path)
    plt.close(fig)
    return png_array(png) if image else None


def png_array(png):
    """RGB uint8 array [H, W, 3] of PNG bytes."""
    from matplotlib import image

    rgba = image.imread(io.BytesIO(png), format="png")      # floats k / 255 for an 8-bit PNG
    return np.round(rgba[..., :3] * 255).astype(np.uint8)


def save_curves(kind, y_true, y_prob, path, title, calibration=None, image=False):
    return save_figure(curves_figure(kind, np.asarray(y_true), np.asarray(y_prob), title, calibration=calibration),
                       path, image=image)
