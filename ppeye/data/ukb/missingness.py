"""The cohort's missingness outputs: ``missingness_features.csv`` (each feature's missing share,
overall and in training), ``missingness_blocks.csv`` (features missing together, which
``model.missing`` reads) and ``missingness.png`` (the most missing features by showcase name)."""
import os

import numpy as np
import pandas as pd

from ...core.io import atomic_write
from . import fields as F
from .field_lists import list_names, load_field_list


def write_missingness(work, cohort, fields_meta):
    """Write the three outputs for ``cohort`` (its feature columns named in ``fields_meta``) into ``work``."""
    feature_cols = [m["column"] for m in fields_meta]
    missing = cohort[feature_cols].isna().to_numpy()
    per_feature = pd.DataFrame({
        "column": feature_cols, "field": [m["field"] for m in fields_meta], "kind": [m["kind"] for m in fields_meta],
        "answer": [(m.get("multiple") or {}).get("meaning", "") for m in fields_meta],     # a multiple-answer code
        "missing_share": missing.mean(0).round(4),
        "missing_share_train": cohort.loc[cohort.split == "train", feature_cols].isna().mean().round(4).to_numpy(),
    })
    blocks = missingness_blocks(missing, feature_cols)
    per_block = pd.DataFrame({
        "block": range(len(blocks)), "columns": [" ".join(b) for b in blocks],
        "share_missing_whole_block": [float(cohort[b].isna().all(axis=1).mean().round(4)) for b in blocks],
    })
    with atomic_write(os.path.join(work, "missingness_features.csv")) as f:
        per_feature.to_csv(f, index=False, float_format="%.6g")
    with atomic_write(os.path.join(work, "missingness_blocks.csv")) as f:
        per_block.to_csv(f, index=False, float_format="%.6g")
    _plot_missingness(per_feature, blocks, os.path.join(work, "missingness.png"))


def missingness_blocks(missing, names, threshold=0.9):
    """Group features whose missing-indicator columns agree (Jaccard >= threshold) into blocks."""
    blocks, assigned = [], set()
    for i in range(missing.shape[1]):
        if i in assigned or not missing[:, i].any():
            continue
        block = [i]
        for j in range(i + 1, missing.shape[1]):
            if j in assigned or not missing[:, j].any():
                continue
            inter = np.logical_and(missing[:, i], missing[:, j]).sum()
            union = np.logical_or(missing[:, i], missing[:, j]).sum()
            if inter / union >= threshold:
                block.append(j)
        if len(block) > 1:
            assigned.update(block)
            blocks.append([names[k] for k in block])
    return blocks


MISSINGNESS_BARS = 40


def _short(name, width=58):
    return name if len(name) <= width else name[:width - 3].rstrip(" ,(-") + "..."


def _plot_missingness(per_feature, blocks, path):
    """The features with missing values, most missing first (at most MISSINGNESS_BARS; the rest
    are counted in the title and listed in missingness_features.csv), each by its showcase name
    and field id; the colour marks a block of fields missing together, named in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = {f.field: f.name for f in F.KNOWN_FIELDS}
    names.update({f.field: f.name for name in list_names() for f in load_field_list(name)})
    block_of = {c: i for i, b in enumerate(blocks) for c in b}
    some = per_feature[per_feature.missing_share > 0].sort_values("missing_share", ascending=False)
    shown = some.head(MISSINGNESS_BARS).iloc[::-1]
    colors = [plt.cm.tab10(block_of[c] % 10) if c in block_of else (0.6, 0.6, 0.6) for c in shown.column]
    labels = [(f"{_short(names.get(int(f), 'field'), 30)}: {_short(m, 26)}" if isinstance(m, str) and m
               else _short(names.get(int(f), "field"))) + f" ({int(f)})" for f, m in zip(shown.field, shown.answer)]
    fig, ax = plt.subplots(figsize=(8.5, 0.24 * max(len(shown), 4) + 1.6), dpi=110)
    ax.barh(range(len(shown)), shown.missing_share * 100, color=colors)
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.set_xlabel("people with the value missing (%)")
    ax.set_xlim(0, 100)
    rest = len(some) - len(shown)
    ax.set_title(f"Missing values: {len(some)} of {len(per_feature)} features have some"
                 + (f"\n(the {len(shown)} most missing; the other {rest} in missingness_features.csv)" if rest > 0 else ""),
                 fontsize=9)
    used = sorted({block_of[c] for c in shown.column if c in block_of})
    handles = [Patch(color=plt.cm.tab10(i % 10), label=f"block {i} (missingness_blocks.csv): {len(blocks[i])} fields missing together")
               for i in used] + ([Patch(color=(0.6, 0.6, 0.6), label="missing on its own")]
                                 if any(c not in block_of for c in shown.column) else [])
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_write(path, mode="wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
