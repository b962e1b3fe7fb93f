"""In words, what a model's weather branch adds: its macro ROC-AUC minus that of its own
patient-only baseline (the same model without the weather), read from the difference's interval.
Used by the comparison (one run), the summary over seeds and the cross-validation by centre."""
import numpy as np

REFERENCE = "model"


def verdict(diff, low, high, reference=REFERENCE):
    """``(kind, sentence)``: what the reference's macro ROC-AUC minus its patient-only baseline's,
    ``diff`` [``low``, ``high``], says about its weather branch; kind ``above`` (interval above 0),
    ``unclear`` (interval includes 0, difference >= 0) or ``below`` (difference < 0)."""
    ci = f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]"
    if low > 0:
        return "above", f"the {reference} beats its patient-only baseline ({ci}): its weather branch adds"
    if diff >= 0:
        return "unclear", (f"the {reference} is not distinguishable from its patient-only baseline ({ci}): no "
                           f"evidence that its weather branch adds")
    if high < 0:
        return "below", (f"the {reference} scores BELOW its own patient-only baseline ({ci}, interval below 0): its "
                         f"weather branch hurts")
    return "below", (f"the {reference} scores BELOW its own patient-only baseline ({ci}; the interval includes 0): "
                     f"no evidence that its weather branch adds")


def weather_verdicts(rows, reference=REFERENCE, baseline="patient_only"):
    """Per split, :func:`verdict` of the reference against its own patient-only baseline (what its
    weather branch adds): ``{split: (kind, sentence)}``; empty without that baseline."""
    return {r["split"]: verdict(r["model_minus_contender"], r["diff_ci_low"], r["diff_ci_high"], reference)
            for r in rows if r["contender"] == baseline and r["disease"] == "macro"
            and np.isfinite(r["model_minus_contender"])}
