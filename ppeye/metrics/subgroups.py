"""Subgroup performance: ROC-AUC per disease within groups of people, with DeLong intervals.

Each attribute (sex, age band, centre, season of the index date, missingness pattern...)
partitions the evaluated people: every person falls in exactly one group of it, so no one is
counted twice within an attribute. A group's AUC gets DeLong's 95% interval; it is flagged
when the overall AUC lies outside that interval (the group differs from everyone by more
than its own uncertainty). Groups with fewer than ``min_cases`` cases or controls of a
disease report their counts and no AUC (an AUC from three cases is noise).
"""
import numpy as np
from scipy import stats

from ..core.errors import InputError
from ..data.ukb.fields import disease_title
from .clinical import auc_interval
from .multilabel import DISEASES
from .plots import _figure

COLUMNS = ["attribute", "group", "disease", "n", "cases", "roc_auc", "ci_low", "ci_high", "overall_roc_auc",
           "differs"]


def subgroup_table(labels, probs, attributes, level=0.95, min_cases=5, names=DISEASES):
    """Rows (dicts with :data:`COLUMNS`) per attribute, group and disease.

    ``attributes``: {name: array [N] of group labels}; ``labels``/``probs`` [N, L].
    """
    labels, probs = np.asarray(labels, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    if labels.shape != probs.shape or labels.ndim != 2:
        raise InputError(f"subgroups need labels and probabilities [N, L], got {labels.shape} and {probs.shape}")
    if labels.shape[1] != len(names):
        raise InputError(f"subgroups: {labels.shape[1]} label columns for {len(names)} names ({', '.join(names)})")
    q = stats.norm.ppf(0.5 + level / 2)
    overall = {}
    for j, d in enumerate(names):
        y = labels[:, j]
        overall[d] = auc_interval(y, probs[:, j], q)[0] if 0 < y.sum() < len(y) else float("nan")
    rows = []
    for attr, groups in attributes.items():
        groups = np.asarray(groups, dtype=object)
        if len(groups) != len(labels):
            raise InputError(f"subgroup attribute {attr!r}: {len(groups)} values for {len(labels)} people")
        for g in sorted(set(groups.tolist()), key=str):
            at = groups == g
            for j, d in enumerate(names):
                y, p = labels[at, j], probs[at, j]
                cases = int(y.sum())
                row = {"attribute": attr, "group": str(g), "disease": d, "n": int(at.sum()), "cases": cases,
                       "roc_auc": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                       "overall_roc_auc": overall[d], "differs": False}
                if min(cases, len(y) - cases) >= min_cases:
                    auc, lo, hi = auc_interval(y, p, q)
                    row.update(roc_auc=auc, ci_low=lo, ci_high=hi,
                               differs=bool(np.isfinite([overall[d], lo, hi]).all() and not lo <= overall[d] <= hi))
                rows.append(row)
    return rows


def forest_figure(rows, title, names=DISEASES):
    """A forest plot: one panel per disease (its full name), a line per subgroup (ROC-AUC and its
    interval) with that disease's cases/people of the group at the right, the disease's overall
    ROC-AUC dashed; red where the group's interval excludes the overall ROC-AUC, blue where it
    includes it, "too few cases" where no interval was computed. The legend says so."""
    from matplotlib.lines import Line2D

    plt = _figure()
    per = max(1, max((sum(r["disease"] == d for r in rows) for d in names), default=1))
    fig = plt.figure(figsize=(3.6 * len(names) + 1.6, 0.32 * max(6, per) + 1.9))
    for k, d in enumerate(names):
        ax = fig.add_subplot(1, len(names), k + 1)
        sub = [r for r in rows if r["disease"] == d]
        ys = np.arange(len(sub))[::-1]
        for y, r in zip(ys, sub):
            if np.isfinite(r["roc_auc"]):
                color = "tab:red" if r["differs"] else "tab:blue"
                ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=color, lw=1.5)
                ax.plot(r["roc_auc"], y, "s", color=color, ms=4)
            else:
                ax.text(0.6, y, "too few cases", fontsize=6, color="gray", va="center", ha="center")
            ax.text(1.02, y, f"{r['cases']}/{r['n']}", fontsize=6, va="center", ha="left",
                    transform=ax.get_yaxis_transform())
        if sub and np.isfinite(sub[0]["overall_roc_auc"]):
            ax.axvline(sub[0]["overall_roc_auc"], color="gray", ls="--", lw=1)
        ax.axvline(0.5, color="lightgray", lw=0.8)
        ax.set_yticks(ys)
        ax.set_yticklabels([f"{r['attribute'].replace('_', ' ')}: {r['group']}" for r in sub] if k == 0
                           else [""] * len(sub), fontsize=7)
        ax.set_ylim(-0.7, max(len(sub), 1) - 0.3)
        ax.set_xlim(0.2, 1.0)
        ax.set_xlabel("ROC-AUC")
        ax.set_title(f"{disease_title(d)}\n(cases/people at the right)", fontsize=8)
    handles = [Line2D([], [], color="tab:blue", marker="s", ms=4, lw=1.5, label="interval includes the overall ROC-AUC"),
               Line2D([], [], color="tab:red", marker="s", ms=4, lw=1.5, label="interval excludes it"),
               Line2D([], [], color="gray", ls="--", lw=1, label="the disease's overall ROC-AUC"),
               Line2D([], [], color="lightgray", lw=0.8, label="chance (0.5)")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
