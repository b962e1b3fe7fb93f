"""Who is in which split: ``train`` / ``val`` / ``test`` at random within the label pattern
(``ukb.split``), ``external`` for the centres of ``ukb.external_centres``, and ``period`` /
``period_2`` for index dates after the dates of ``ukb.temporal_split`` (a held-out period)."""
import numpy as np
import pandas as pd

from ...core.errors import ConfigError
from .centres import resolve_sites

PERIOD_SPLITS = ("period", "period_2")


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
    train / val / test at random within the label pattern."""
    ukb = cfg["ukb"]
    fractions = ukb["split"]
    names = ("train", "val", "test")
    if set(fractions) != set(names) or abs(sum(fractions.values()) - 1) > 1e-6 or min(fractions.values()) < 0:
        raise ConfigError(f"ukb.split must give train, val and test fractions summing to 1, got {dict(fractions)}")
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
    strata = np.array(["".join(map(str, row)) for row in labels.astype(int)])
    for stratum in np.unique(strata[~held]):
        members = np.nonzero((strata == stratum) & ~held)[0]
        members = members[rng.permutation(len(members))]
        cuts = np.round(np.cumsum([fractions[n] for n in names]) * len(members)).astype(int)
        for name, lo, hi in zip(names, np.r_[0, cuts[:-1]], cuts):
            split[members[lo:hi]] = name
    return split
