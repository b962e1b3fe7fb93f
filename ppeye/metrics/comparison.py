"""The model against other contenders on the same people: per disease the ROC-AUC with its DeLong
interval and the reference's AUC minus each contender's (DeLong's test); the macro average by a
paired bootstrap. Reads and checks the ``<split>_predictions.npz`` each contender's evaluation
wrote (ppeye/engine/compare.py writes the tables)."""
import os

import numpy as np

from ..core.errors import DataError, InputError
from .clinical import auc_interval, delong
from .multilabel import DISEASES, roc_auc

COLUMNS = ["split", "contender", "disease", "n", "cases", "roc_auc", "ci_low", "ci_high", "model_minus_contender",
           "diff_ci_low", "diff_ci_high", "p_value"]


def load_predictions(eval_dir, split):
    """``{labels, probs, rows, path}`` from ``<eval_dir>/<split>_predictions.npz``."""
    path = os.path.join(eval_dir, f"{split}_predictions.npz")
    if not os.path.isfile(path):
        raise DataError(f"{path} does not exist: evaluate that run first (tools/eval.py)")
    with np.load(path) as z:
        missing = sorted({"labels", "probs", "rows"} - set(z.files))
        if missing:
            raise DataError(f"{path} lacks {missing}: it was not written by tools/eval.py")
        return {"labels": z["labels"].astype(np.float64), "probs": z["probs"].astype(np.float64),
                "rows": z["rows"].astype(np.int64), "path": path}


def check_same_people(preds, split):
    """Refuse contenders scored on different people or labels of ``split``."""
    names = list(preds)
    first = preds[names[0]]
    for name in names[1:]:
        p = preds[name]
        where = f"{first['path']} ({names[0]}) and {p['path']} ({name})"
        if len(p["rows"]) != len(first["rows"]) or not np.array_equal(np.sort(p["rows"]), np.sort(first["rows"])):
            only = len(np.setdiff1d(p["rows"], first["rows"])) + len(np.setdiff1d(first["rows"], p["rows"]))
            raise DataError(f"the {split} sets differ: {where} hold {len(first['rows'])} and {len(p['rows'])} people, "
                            f"{only} of them in one only. Compare runs evaluated on the same cohort and split")
        order = np.argsort(p["rows"])[np.argsort(np.argsort(first["rows"]))]     # p's people in first's order
        if p["labels"].shape != first["labels"].shape or not np.array_equal(p["labels"][order], first["labels"]):
            diff = int((p["labels"][order] != first["labels"]).any(axis=1).sum()) if (
                p["labels"].shape == first["labels"].shape) else "all"
            raise DataError(f"the {split} label sets differ: {where} have the same people but different labels "
                            f"for {diff} of them (another label definition or cohort build?)")
        preds[name] = p | {"labels": p["labels"][order], "probs": p["probs"][order], "rows": p["rows"][order]}
    return preds


def _macro_bootstrap(y, scores, n_boot, level, seed, reference):
    """Per contender: paired percentile bootstrap of the macro ROC-AUC and of the reference's
    minus it ({name: (low, high, diff_low, diff_high, p)}); replicates with a disease of one class
    are left out."""
    rng = np.random.default_rng(seed)
    names = list(scores)
    reps = []
    for _ in range(int(n_boot)):
        i = rng.integers(0, len(y), len(y))
        yy = y[i]
        if not ((yy.sum(axis=0) > 0) & (yy.sum(axis=0) < len(i))).all():
            continue
        reps.append([np.mean([roc_auc(yy[:, j], scores[n][i, j]) for j in range(y.shape[1])]) for n in names])
    if not reps:
        return {n: (np.nan,) * 5 for n in names}
    reps = np.asarray(reps)
    tail = (1 - level) / 2 * 100
    ref = reps[:, names.index(reference)]
    out = {}
    for k, n in enumerate(names):
        d = ref - reps[:, k]
        lo, hi = np.percentile(reps[:, k], [tail, 100 - tail])
        dlo, dhi = np.percentile(d, [tail, 100 - tail])
        # two-sided, with the +1 correction so a finite bootstrap never claims p = 0
        p = min(1.0, 2 * (min((d <= 0).sum(), (d >= 0).sum()) + 1) / (len(d) + 1)) if n != reference else np.nan
        out[n] = (lo, hi, dlo, dhi, p)
    return out


def compare_table(preds, split, level=0.95, n_boot=1000, seed=0, reference="model"):
    """Rows of ``compare_<split>.csv`` for ``preds`` ({contender: predictions}) scored on the
    same people; differences are ``reference`` minus each contender."""
    from scipy import stats

    if reference not in preds:
        raise InputError(f"the comparison needs the reference contender {reference!r}, got {sorted(preds)}")
    preds = check_same_people({reference: preds[reference]} | {k: v for k, v in preds.items() if k != reference},
                              split)
    y = preds[reference]["labels"]
    ref = preds[reference]["probs"]
    q = stats.norm.ppf(0.5 + level / 2)
    rows = []
    macro = _macro_bootstrap(y, {n: p["probs"] for n, p in preds.items()}, n_boot, level, seed, reference)
    for name, p in preds.items():
        aucs = []
        for j, d in enumerate(DISEASES):
            base = {"split": split, "contender": name, "disease": d, "n": len(y), "cases": int(y[:, j].sum())}
            if not 0 < y[:, j].sum() < len(y):
                rows.append(base | {k: np.nan for k in COLUMNS[5:]})
                aucs.append(np.nan)
                continue
            auc, lo, hi = auc_interval(y[:, j], p["probs"][:, j], q)
            aucs.append(auc)
            row = base | {"roc_auc": auc, "ci_low": lo, "ci_high": hi}
            if name == reference:
                row |= {"model_minus_contender": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
                        "p_value": np.nan}
            else:
                t = delong(y[:, j], ref[:, j], p["probs"][:, j], level)
                row |= {"model_minus_contender": t["diff"], "diff_ci_low": t["ci_low"], "diff_ci_high": t["ci_high"],
                        "p_value": t["p_value"]}
            rows.append(row)
        lo, hi, dlo, dhi, pv = macro[name]
        m = float(np.nanmean(aucs)) if not np.isnan(aucs).all() else np.nan
        ref_macro = np.nanmean([r["roc_auc"] for r in rows if r["contender"] == reference and r["disease"] in DISEASES])
        rows.append({"split": split, "contender": name, "disease": "macro", "n": len(y), "cases": int(y.sum()),
                     "roc_auc": m, "ci_low": lo, "ci_high": hi,
                     "model_minus_contender": np.nan if name == reference else ref_macro - m,
                     "diff_ci_low": dlo if name != reference else np.nan,
                     "diff_ci_high": dhi if name != reference else np.nan, "p_value": pv})
    return rows
