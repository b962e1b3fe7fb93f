"""Who is in which split: ``train`` / ``val`` / ``test`` at random within the label pattern
(``ukb.split``), ``external`` for the centres of ``ukb.external_centres``, and ``period`` /
``period_2`` for index dates after the dates of ``ukb.temporal_split`` (a held-out period).

``ukb.validation`` says how the validation split is drawn from the rest:

- ``random``: at random within the label pattern, like train and test. Its people share centres
  and calendar days with training people, so it rewards a model that remembers the training
  weather, and early stopping, thresholds, calibration and the retrieval mix are chosen by it.
- ``later``: the people with the latest index dates (about ``ukb.split.val`` of them; everyone
  of one index date on the same side), so what is chosen on validation is chosen on a later
  period than the model was fitted on, as the held-out period judges it. Train and test stay
  random among the earlier people, with their fractions scaled to fill the rest. As with the
  held-out period, the first ``data.window_days`` of the later period share weather days with
  training people's windows.
"""
import numpy as np
import pandas as pd

from ...core.errors import ConfigError
from .centres import resolve_sites

PERIOD_SPLITS = ("period", "period_2")
VALIDATION_DESIGNS = ("random", "later")


def temporal_cutoffs(cfg):
    """``ukb.temporal_split`` as a list of 0-2 ascending ``numpy.datetime64`` dates, checked
    against the weather period."""
    spec = cfg["ukb"].get("temporal_split")
    if spec is None:
        return []
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    try:
        cuts = [np.datetime64(pd.Timestamp(str(d)).date(), "D") for d in items]
    except (ValueError, TypeError):
        cuts = None
    data = cfg["data"]
    start = np.datetime64(pd.Timestamp(str(data["start_date"])).date(), "D")
    end = np.datetime64(pd.Timestamp(str(data["end_date"])).date(), "D")
    if not cuts or len(cuts) > len(PERIOD_SPLITS) or any(b <= a for a, b in zip(cuts, cuts[1:])) \
            or not all(start < c < end for c in cuts):
        raise ConfigError(f"ukb.temporal_split must be null, a date or a list of {len(PERIOD_SPLITS)} ascending dates "
                          f"strictly inside data.start_date..data.end_date ({start}..{end}), got "
                          f"{', '.join(str(d) for d in items) or 'an empty list'}")
    return cuts


def assign_splits(labels, site_codes, index_dates, cfg, rng):
    """Per person: ``external`` (a centre of ``ukb.external_centres``), else ``period`` /
    ``period_2`` (index date after the first / second date of ``ukb.temporal_split``), else
    ``val`` (the latest index dates, with ``ukb.validation: later``), else train / val / test
    at random within the label pattern."""
    ukb = cfg["ukb"]
    fractions = dict(ukb["split"])
    names = ("train", "val", "test")
    if set(fractions) != set(names) or abs(sum(fractions.values()) - 1) > 1e-6 or min(fractions.values()) < 0:
        raise ConfigError(f"ukb.split must give train, val and test fractions summing to 1, got {dict(fractions)}")
    design = ukb.get("validation", "random")
    if design not in VALIDATION_DESIGNS:
        raise ConfigError(f"ukb.validation must be one of {', '.join(VALIDATION_DESIGNS)}, got {design!r}")
    split = np.empty(len(labels), dtype=object)
    external = np.isin(site_codes, [c.code for c in resolve_sites(ukb["external_centres"])]) \
        if ukb["external_centres"] else np.zeros(len(labels), bool)
    split[external] = "external"
    held = external.copy()
    dates = np.asarray(index_dates, dtype="datetime64[D]")
    for name, cut in reversed(list(zip(PERIOD_SPLITS, temporal_cutoffs(cfg)))):
        later = (dates > cut) & ~held
        split[later] = name
        held |= later
    if design == "later" and fractions["val"] > 0:
        pool = np.sort(dates[~held])
        take = int(round(fractions["val"] * len(pool)))
        if take:
            later = (dates >= pool[len(pool) - take]) & ~held
            split[later] = "val"
            held |= later
        rest = fractions["train"] + fractions["test"]
        names = ("train", "test")
        fractions = {n: fractions[n] / rest for n in names} if rest > 0 else {"train": 1.0, "test": 0.0}
    strata = np.array(["".join(map(str, row)) for row in labels.astype(int)])
    for stratum in np.unique(strata[~held]):
        members = np.nonzero((strata == stratum) & ~held)[0]
        members = members[rng.permutation(len(members))]
        cuts = np.round(np.cumsum([fractions[n] for n in names]) * len(members)).astype(int)
        for name, lo, hi in zip(names, np.r_[0, cuts[:-1]], cuts):
            split[members[lo:hi]] = name
    return split
