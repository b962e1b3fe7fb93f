"""A synthetic UK Biobank-style participant table.

People are drawn first (age, sex, centre, six latent health factors, true
diabetes, smoking, ethnicity, intra-ocular pressure...); every feature field is
a function of those plus noise, so features are correlated as in a real cohort
and imputation has something to learn from. Then the table is made as messy as
an export: values missing at random, whole measurement blocks missing together
(eye measures exist only for a minority, as at UK Biobank), negative codes
(-1 do not know, -3 prefer not to answer, -10 less than one), and placeholder
dates in the outcome fields.

Fields with real UK Biobank ids (``ukb.fields.KNOWN_FIELDS``) come first, in that order; with more
features than that, filler fields with ids from 900001 up are added. **Ids
900001+ are synthetic and are not UK Biobank fields.**
"""
import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd

from ...core.errors import ConfigError
from ..ukb import fields as F
from ..ukb.field_lists import load_field_list

FILLER_BASE = 900000
N_LATENT = 6
METAB, SOCIO, LIFESTYLE, FRAILTY, EYE, BLOOD = range(N_LATENT)


@dataclass(frozen=True)
class FieldSpec(F.FieldInfo):
    """One feature field of the synthetic table: a known field's record (``F.FieldInfo``: kind,
    block, codes, ...) or a filler's, and ``make(people, rng)``, which returns its true values.
    ``zero_is_less_than_one``: a count field's true 0 is exported as -10 ("less than one"), as for
    the curated models, which round a small amount down to 0; a list's ``values`` model names its
    codes itself (0 "none" and -10 "less than one" apart)."""

    make: Optional[Callable] = None
    zero_is_less_than_one: bool = True


def _u(score):
    """Ranks of ``score`` mapped to (0, 1): an exact uniform with the same order."""
    ranks = np.argsort(np.argsort(score, kind="mergesort"), kind="mergesort")
    return (ranks + 0.5) / len(score)


def _categories(score, levels, probs):
    cuts = np.cumsum(probs)[:-1] / np.sum(probs)
    return np.asarray(levels)[np.searchsorted(cuts, _u(score))]


def _lat(P, rng, loads, noise=0.6):
    """Standard normal score: latent loadings plus independent noise."""
    s = sum(w * P.z[:, k] for k, w in loads.items()) + noise * rng.standard_normal(P.n)
    return s / np.sqrt(sum(w * w for w in loads.values()) + noise**2)


def _age_sd(P):
    return (P.age - 55.0) / 8.0


# how the generator makes each known field (``F.KNOWN_FIELDS``) from the people; fmt: off
MAKERS = {
    31: lambda P, r: P.male.astype(float),
    34: lambda P, r: P.birth_year.astype(float),
    52: lambda P, r: P.birth_month.astype(float),
    21003: lambda P, r: np.floor(P.age),
    21000: lambda P, r: P.ethnicity.astype(float),
    20116: lambda P, r: P.smoking.astype(float),
    2443: lambda P, r: P.diabetes.astype(float),
    30750: lambda P, r: P.hba1c,
    5262: lambda P, r: P.iop + 1.2 * r.standard_normal(P.n),
    5254: lambda P, r: P.iop + 1.2 * r.standard_normal(P.n),
    21001: lambda P, r: P.bmi,
    4080: lambda P, r: np.round(P.sbp),
    4079: lambda P, r: np.round(0.45 * P.sbp + 20 + 7 * r.standard_normal(P.n)),
    50: lambda P, r: P.height,
    21002: lambda P, r: P.bmi * (P.height / 100) ** 2,
    48: lambda P, r: np.round(62 + 1.1 * P.bmi + 9 * P.male + 4 * r.standard_normal(P.n)),
    49: lambda P, r: np.round(70 + 1.2 * P.bmi + 4 * r.standard_normal(P.n)),
    102: lambda P, r: np.round(69 + 11 * _lat(P, r, {METAB: 0.3, FRAILTY: 0.3})),
    189: lambda P, r: -1.3 + 3.0 * _lat(P, r, {SOCIO: -1.0}, 0.5),
    738: lambda P, r: _categories(_lat(P, r, {SOCIO: 1.0}), [1, 2, 3, 4, 5], [22, 26, 25, 19, 8]),
    6138: lambda P, r: _categories(_lat(P, r, {SOCIO: 1.0}), [-7, 4, 3, 5, 6, 2, 1], [17, 5, 21, 6, 5, 11, 35]),
    1558: lambda P, r: _categories(_lat(P, r, {LIFESTYLE: -0.8, SOCIO: -0.3}), [1, 2, 3, 4, 5, 6], [20, 23, 26, 11, 12, 8]),
    20117: lambda P, r: _categories(_lat(P, r, {LIFESTYLE: -0.5}), [2, 1, 0], [92, 4, 4]),
    2178: lambda P, r: _categories(_lat(P, r, {FRAILTY: 1.0, METAB: 0.4}), [1, 2, 3, 4], [17, 58, 21, 4]),
    1160: lambda P, r: np.clip(np.round(7.1 + 1.1 * _lat(P, r, {FRAILTY: -0.3})), 2, 14),
    1050: lambda P, r: np.clip(np.round(3.7 + 2.3 * _lat(P, r, {LIFESTYLE: 0.6})), 0, 16),
    1060: lambda P, r: np.clip(np.round(1.8 + 1.4 * _lat(P, r, {LIFESTYLE: 0.6})), 0, 12),
    1717: lambda P, r: _categories(r.standard_normal(P.n) + 3 * (P.ethnicity > 2000), [1, 2, 3, 4, 5, 6], [30, 55, 8, 3, 2, 2]),
    1727: lambda P, r: _categories(r.standard_normal(P.n), [1, 2, 3, 4], [12, 43, 30, 15]),
    2207: lambda P, r: (r.random(P.n) < 0.6 + 0.3 * (P.age > 55)).astype(float),
    5255: lambda P, r: P.iop - 0.4 + 1.5 * r.standard_normal(P.n),
    5263: lambda P, r: P.iop - 0.4 + 1.5 * r.standard_normal(P.n),
    5084: lambda P, r: -0.2 + 2.2 * _lat(P, r, {EYE: 0.7}),
    5085: lambda P, r: -0.2 + 2.2 * _lat(P, r, {EYE: 0.7}),
    30690: lambda P, r: 5.7 + 1.1 * _lat(P, r, {METAB: 0.4}),
    30760: lambda P, r: np.clip(1.45 + 0.38 * _lat(P, r, {METAB: -0.7}) - 0.25 * P.male, 0.3, None),
    30780: lambda P, r: 3.55 + 0.87 * _lat(P, r, {METAB: 0.4}),
    30870: lambda P, r: np.exp(0.35 + 0.5 * _lat(P, r, {METAB: 0.8})),
    30740: lambda P, r: 4.9 + 0.6 * _lat(P, r, {METAB: 0.5}) + 2.8 * P.diabetes,
    30700: lambda P, r: 62 + 15 * P.male + 14 * _lat(P, r, {FRAILTY: 0.4}),
    30710: lambda P, r: np.exp(0.3 + 1.0 * _lat(P, r, {METAB: 0.5, FRAILTY: 0.4})),
    30000: lambda P, r: 6.9 + 1.8 * _lat(P, r, {BLOOD: 0.7, METAB: 0.3}),
    30010: lambda P, r: 4.3 + 0.5 * P.male + 0.35 * _lat(P, r, {BLOOD: 0.7}),
    30020: lambda P, r: 13.5 + 1.6 * P.male + 1.0 * _lat(P, r, {BLOOD: 0.7}),
    30080: lambda P, r: 250 + 58 * _lat(P, r, {BLOOD: 0.5}),
    3062: lambda P, r: 3.2 + 1.1 * P.male - 0.03 * (P.age - 55) + 0.6 * _lat(P, r, {FRAILTY: -0.5}),
    3063: lambda P, r: 2.5 + 0.8 * P.male - 0.03 * (P.age - 55) + 0.5 * _lat(P, r, {FRAILTY: -0.5, LIFESTYLE: -0.3}),
    23099: lambda P, r: 36 - 10 * P.male + 1.0 * (P.bmi - 27) + 2 * r.standard_normal(P.n),
    46: lambda P, r: np.round(np.clip(22 + 16 * P.male - 0.25 * (P.age - 55) + 5 * _lat(P, r, {FRAILTY: -0.6}), 2, None)),
    47: lambda P, r: np.round(np.clip(24 + 17 * P.male - 0.25 * (P.age - 55) + 5 * _lat(P, r, {FRAILTY: -0.6}), 2, None)),
    884: lambda P, r: _categories(_lat(P, r, {LIFESTYLE: 0.8}), list(range(8)), [12, 7, 11, 13, 9, 15, 4, 29]),
    904: lambda P, r: _categories(_lat(P, r, {LIFESTYLE: 0.8}), list(range(8)), [30, 12, 16, 15, 7, 8, 2, 10]),
    1289: lambda P, r: np.clip(np.round(2.8 + 1.8 * _lat(P, r, {LIFESTYLE: 0.5})), 0, 15),
    1309: lambda P, r: np.clip(np.round(2.2 + 1.6 * _lat(P, r, {LIFESTYLE: 0.5})), 0, 15),
    1488: lambda P, r: np.clip(np.round(3.4 + 2.7 * r.standard_normal(P.n)), 0, 20),
    1498: lambda P, r: np.clip(np.round(1.9 + 2.0 * r.standard_normal(P.n)), 0, 15),
    6150: lambda P, r: _categories(_lat(P, r, {METAB: 0.7, FRAILTY: 0.4}) + 0.05 * (P.age - 55), [-7, 4, 2, 1, 3], [70, 23, 3, 2, 2]),
    2453: lambda P, r: (r.random(P.n) < 0.04 + 0.003 * (P.age - 40)).astype(float),
    2463: lambda P, r: (r.random(P.n) < 0.09).astype(float),
    2090: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.5})) > 0.66).astype(float),
    2316: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.5, LIFESTYLE: -0.3})) > 0.8).astype(float),
    137: lambda P, r: r.poisson(np.clip(1.5 + 0.1 * (P.age - 55) + 1.2 * P.z[:, FRAILTY] + 2 * P.diabetes, 0.1, None)).astype(float),
    20015: lambda P, r: 0.52 * P.height + 3 * r.standard_normal(P.n),
    1920: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.55).astype(float),
    1930: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.6).astype(float),
    1940: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.3})) > 0.72).astype(float),
    1950: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.3})) > 0.48).astype(float),
    1960: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.6).astype(float),
    1970: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.78).astype(float),
    1980: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.58).astype(float),
    1990: lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.84).astype(float),
}
# fmt: on
CURATED = [FieldSpec(**dataclasses.asdict(info), make=MAKERS[info.field]) for info in F.KNOWN_FIELDS]

# fields the planted risk reads (their true values): they must be in every table
SIGNAL_FIELDS = (31, 34, 52, 21000, 20116, 2443, 30750, 5262, 21001, 4080)


def filler_fields(count, seed):
    """``count`` synthetic fields (ids 900001+) of mixed kinds, in blocks of 12."""
    rng = np.random.default_rng([seed, 7])
    out = []
    for i in range(count):
        fid = FILLER_BASE + i + 1
        kind = rng.choice(["continuous", "categorical", "ordinal"], p=[0.6, 0.25, 0.15])
        loads = {int(k): float(rng.normal(0, 0.7)) for k in rng.choice(N_LATENT, 2, replace=False)}
        block = f"filler{i // 12:02d}"
        if kind == "continuous":
            mean, sd = float(rng.uniform(-50, 150)), float(rng.uniform(0.5, 20))
            make = (lambda m, s, l: lambda P, r: m + s * _lat(P, r, l))(mean, sd, loads)
            out.append(FieldSpec(fid, f"Synthetic measure {i + 1}", "continuous", block, decimals=3, make=make))
        elif kind == "categorical":
            k = int(rng.integers(2, 6))
            probs = rng.dirichlet(np.full(k, 2.0))
            make = (lambda ks, ps, l: lambda P, r: _categories(_lat(P, r, l), ks, ps).astype(float))(list(range(1, k + 1)), probs, loads)
            out.append(FieldSpec(fid, f"Synthetic category {i + 1}", "categorical", block, codes=(-1, -3), make=make))
        else:
            probs = rng.dirichlet(np.full(5, 3.0))
            make = (lambda ps, l: lambda P, r: _categories(_lat(P, r, l), [1, 2, 3, 4, 5], ps).astype(float))(probs, loads)
            out.append(FieldSpec(fid, f"Synthetic rating {i + 1}", "ordinal", block, codes=(-1, -3), make=make))
    return out


def feature_fields(num_features, seed):
    """The first ``num_features`` curated fields, then fillers."""
    if num_features < len(SIGNAL_FIELDS):
        raise ConfigError(
            f"synthetic.num_features must be at least {len(SIGNAL_FIELDS)} (the fields the planted "
            f"signals use: {', '.join(map(str, SIGNAL_FIELDS))}), got {num_features}"
        )
    chosen = CURATED[:num_features]
    missing_signal = [f for f in SIGNAL_FIELDS if f not in {c.field for c in chosen}]
    if missing_signal:  # keep the signal fields even in tiny tables
        chosen = [c for c in CURATED if c.field in SIGNAL_FIELDS] + [c for c in chosen if c.field not in SIGNAL_FIELDS]
        chosen = chosen[:num_features]
    return chosen + filler_fields(max(0, num_features - len(chosen)), seed)


# the latent factors a listed field without a curated model loads on, by showcase category
CATEGORY_LOADS = {17518: {METAB: 0.6, BLOOD: 0.4}, 100081: {BLOOD: 0.8}, 100083: {METAB: 0.5},
                  100015: {EYE: 0.8}, 100014: {EYE: 0.7}, 100017: {EYE: 0.5, FRAILTY: 0.3},
                  114: {SOCIO: 0.7}, 115: {SOCIO: 0.6}, 151: {SOCIO: -0.6}, 100066: {SOCIO: 0.7}}


def synthetic_maker(spec, loads):
    """``make(people, rng)`` from a field list's ``synthetic`` column: ``normal mean sd lo hi``,
    ``lognormal mean sd`` or ``values code:weight ...``, driven by the latent factors ``loads``."""
    kind, *args = spec.split()
    try:
        if kind == "normal":
            mean, sd, lo, hi = (float(a) for a in args)
            return lambda P, r: np.clip(mean + sd * _lat(P, r, loads), lo, hi)
        if kind == "lognormal":
            mean, sd = (float(a) for a in args)
            s2 = np.log1p((sd / mean) ** 2)
            return lambda P, r: np.exp(np.log(mean) - s2 / 2 + np.sqrt(s2) * _lat(P, r, loads))
        if kind == "values" and args:
            pairs = [a.split(":") for a in args]
            codes, weights = [float(c) for c, _ in pairs], [float(w) for _, w in pairs]
            return lambda P, r: _categories(_lat(P, r, loads), codes, weights).astype(float)
    except ValueError:
        pass
    raise ConfigError(f"synthetic model {spec!r}: expected 'normal mean sd lo hi', 'lognormal mean sd' or "
                      f"'values code:weight ...'")


def multiple_maker(spec, loads, field):
    """``make(people, rng)`` -> codes [N, arrays] (NaN: an empty array) of a multiple-answer field from
    its list's ``multiple [men|women] code:rate ...``: each code named independently with its rate,
    the more often the higher the latent ``loads`` score; named codes fill the arrays in code order;
    nobody-named gets the coding's first negative answer (its "none of the above"); ``men``/``women``:
    the question was asked of that sex only (the others' arrays are empty)."""
    _, *args = spec.split()
    sex = args.pop(0) if args and args[0] in ("men", "women") else None
    try:
        rates = [(float(c), float(r)) for c, r in (a.split(":") for a in args)]
    except ValueError:
        rates = []
    answers = [c for c, _ in field.answers]
    none = [c for c in answers if c < 0]
    if not rates or not none or any(c not in answers or not 0 < r < 1 for c, r in rates):
        raise ConfigError(f"field {field.field}: synthetic model {spec!r}: expected 'multiple [men|women] "
                          f"code:rate ...' with codes of its coding ({', '.join(map(str, answers))}), rates in "
                          f"(0, 1) and a negative none-of-the-above code in its codes")

    def make(P, r):
        out = np.full((P.n, field.arrays), np.nan)
        fill = np.zeros(P.n, int)
        for code, rate in rates:
            named = _u(_lat(P, r, loads, noise=1.0)) > 1 - rate
            named &= fill < field.arrays
            out[named, fill[named]] = code
            fill += named
        out[fill == 0, 0] = none[0]
        if sex is not None:
            out[P.male.astype(bool) != (sex == "men")] = np.nan
        return out
    return make


def listed_fields(name):
    """The fields of the versioned list ``name`` (``ukb.features: <name>``) with their makers: the
    curated one where the generator has it, else the list's ``synthetic`` model."""
    out = []
    for f in load_field_list(name):
        loads = CATEGORY_LOADS.get(f.category, {LIFESTYLE: 0.4, FRAILTY: 0.3})
        if f.kind == "multiple":
            make = multiple_maker(f.synthetic, loads, f)
        else:
            make = MAKERS.get(f.field) if f.synthetic == "curated" else synthetic_maker(f.synthetic, loads)
        if make is None:
            raise ConfigError(f"field list {name}: field {f.field} says curated but the generator has no model for it")
        base = {k: getattr(f, k) for k in ("field", "name", "kind", "block", "codes", "less_than_one", "instanced",
                                             "decimals", "arrays", "answers", "coding")}
        out.append(FieldSpec(**base, make=make, zero_is_less_than_one=f.synthetic == "curated"))
    missing = [f for f in SIGNAL_FIELDS if f not in {s.field for s in out}]
    if missing:
        raise ConfigError(f"field list {name} lacks {missing}, which the planted signals read")
    return out


def synthetic_fields(cfg, seed):
    """The feature fields of the synthetic table: a named list's (``ukb.features: <name>``, whose
    size ``synthetic.num_features`` must be), else the curated fields and fillers."""
    spec = (cfg.get("ukb") or {}).get("features")
    n = int(cfg["synthetic"]["num_features"])
    if isinstance(spec, str):
        fields = listed_fields(spec)
        if n != len(fields):
            raise ConfigError(f"synthetic.num_features is {n} but the field list {spec} (ukb.features) has "
                              f"{len(fields)} fields: set synthetic.num_features and data.num_features to {len(fields)}")
        return fields
    return feature_fields(n, seed)


class People:
    """The true attributes of the synthetic participants (arrays of length ``n``)."""

    def __init__(self, n, sites, start, end, years_before, rng):
        self.n = n
        self.site = rng.integers(0, len(sites), n)
        self.centre_code = np.array([sites[s].code for s in self.site])
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        lo = start - pd.DateOffset(years=years_before)
        hi = min(start + pd.DateOffset(years=1), end)
        span = (hi - lo).days
        self.assessment = lo + pd.to_timedelta(rng.integers(0, span + 1, n), unit="D")
        self.age = rng.uniform(40, 70, n)  # at assessment
        birth = self.assessment - pd.to_timedelta(np.round(self.age * 365.25), unit="D")
        self.birth_year = birth.year.to_numpy()
        self.birth_month = birth.month.to_numpy()
        self.birth = birth
        self.male = (rng.random(n) < 0.455).astype(int)
        self.z = rng.standard_normal((n, N_LATENT))
        self.ethnicity = _categories(rng.standard_normal(n), [1001, 1002, 1003, 3001, 3002, 4001, 4002, 5, 6], [88, 2.5, 4, 1.3, 0.5, 1.1, 0.9, 0.4, 1.3])
        black = np.isin(self.ethnicity, (4001, 4002)).astype(float)
        self.diabetes = (rng.random(n) < 1 / (1 + np.exp(-(-3.3 + 1.0 * self.z[:, METAB] + 0.04 * (self.age - 55) + 0.6 * black)))).astype(int)
        self.smoking = _categories(0.8 * self.z[:, LIFESTYLE] + 0.6 * rng.standard_normal(n), [2, 1, 0], [10, 35, 55])
        self.iop = 15.9 + 3.2 * (0.6 * self.z[:, EYE] + 0.8 * rng.standard_normal(n)) + 0.8 * black
        self.hba1c = 35.5 + 4.0 * (0.5 * self.z[:, METAB] + 0.85 * rng.standard_normal(n)) + 14.0 * self.diabetes
        self.bmi = np.clip(27.4 + 4.6 * (0.8 * self.z[:, METAB] + 0.6 * rng.standard_normal(n)), 14, 65)
        self.sbp = 138 + 18 * (0.35 * self.z[:, METAB] + 0.3 * _age_sd(self) + 0.85 * rng.standard_normal(n))
        self.height = 162 + 13.5 * self.male + 6.5 * rng.standard_normal(n)
        self.black = black
        # censoring: about 4% die during follow-up
        dies = rng.random(n) < 0.04
        death_offset = rng.uniform(0.05, 1.0, n) * (end - self.assessment).days.to_numpy()
        self.death = pd.DatetimeIndex(np.where(dies, self.assessment + pd.to_timedelta(np.round(death_offset), unit="D"), pd.NaT))

    def covariates(self, ref_dates):
        """The patient covariates of the risk model at ``ref_dates`` (see signals.PATIENT_EFFECTS)."""
        age_at = (pd.DatetimeIndex(ref_dates) - self.birth).days.to_numpy() / 365.25
        return {
            "age_per_decade": (age_at - 60.0) / 10.0,
            "iop_sd": (self.iop - 15.9) / 3.2,
            "male": self.male.astype(float),
            "black_ethnicity": self.black,
            "diabetes": self.diabetes.astype(float),
            "current_smoker": (self.smoking == 2).astype(float),
            "bmi_sd": (self.bmi - 27.4) / 4.6,
            "hba1c_sd": (self.hba1c - 40.0) / 8.0,
            "sbp_sd": (self.sbp - 138.0) / 18.0,
        }, age_at


def make_feature_values(fields, people, seed):
    """True values of every feature field, ``{field id: float array}``."""
    out = {}
    for spec in fields:
        rng = np.random.default_rng([seed, 8, spec.field])
        values = np.asarray(spec.make(people, rng), dtype=np.float64)
        out[spec.field] = np.round(values, spec.decimals) if spec.kind == "continuous" else values
    return out


def apply_missingness(fields, values, missing, seed, n):
    """Turn true values into exported values: NaN for missing, negative codes for non-answers.

    Returns ``(exported, report)`` where ``report`` counts what was done per field.
    """
    rng = np.random.default_rng([seed, 9])
    exported = {}
    report = {}
    blocks = sorted({f.block for f in fields if f.block})
    block_missing = {}
    for b in blocks:
        rate = 1 - missing["eye_measured"] if b == "eye" else missing["block_rate"]
        block_missing[b] = rng.random(n) < rate
    never_missing = {31, 34, 52}
    for spec in fields:
        v = values[spec.field].copy()
        counts = {"random": 0, "block": 0, "codes": 0, "less_than_one": 0}
        if spec.field not in never_missing:
            hole = rng.random(n) < missing["random_rate"]
            counts["random"] = int(hole.sum())
            v[hole] = np.nan
            if spec.block:
                counts["block"] = int((block_missing[spec.block] & ~hole).sum())
                v[block_missing[spec.block]] = np.nan
        if spec.codes:
            answered = ~np.isnan(v) if v.ndim == 1 else ~np.isnan(v).all(axis=1)
            coded = answered & (rng.random(n) < missing["negative_code_rate"])
            if v.ndim == 1:
                v[coded] = rng.choice(spec.codes, coded.sum())
            else:                                   # a multiple-answer field: the no-answer code alone
                v[coded] = np.nan
                v[coded, 0] = rng.choice(spec.codes, coded.sum())
            counts["codes"] = int(coded.sum())
        if spec.less_than_one and spec.zero_is_less_than_one:
            zero = v == 0
            v[zero] = F.LESS_THAN_ONE
            counts["less_than_one"] = int(zero.sum())
        exported[spec.field] = v
        report[spec.field] = counts
    return exported, report
