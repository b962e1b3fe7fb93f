"""A synthetic UK Biobank-style participant table.

People are drawn first (age, sex, centre, six latent health factors, true
diabetes, smoking, ethnicity, intra-ocular pressure...); every feature field is
a function of those plus noise, so features are correlated as in a real cohort
and imputation has something to learn from. Then the table is made as messy as
an export: values missing at random, whole measurement blocks missing together
(eye measures exist only for a minority, as at UK Biobank), negative codes
(-1 do not know, -3 prefer not to answer, -10 less than one), and placeholder
dates in the outcome fields.

Fields with real UK Biobank ids come first, in ``CURATED`` order; with more
features than that, filler fields with ids from 900001 up are added. **Ids
900001+ are synthetic and are not UK Biobank fields.**
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import pandas as pd

from ...core.errors import ConfigError
from ..ukb import fields as F

FILLER_BASE = 900000
N_LATENT = 6
METAB, SOCIO, LIFESTYLE, FRAILTY, EYE, BLOOD = range(N_LATENT)


@dataclass(frozen=True)
class FieldSpec:
    """One feature field: how it is typed, grouped and made.

    ``kind`` is continuous, integer, ordinal or categorical. ``codes`` are the
    negative "no answer" codes the field can carry; ``less_than_one`` marks count
    fields where -10 means "less than one". ``block`` names the measurement block
    that goes missing as a whole. ``make(people, rng)`` returns the true values.
    """

    field: int
    name: str
    kind: str
    make: Callable
    block: Optional[str] = None
    codes: Tuple[int, ...] = ()
    less_than_one: bool = False
    instanced: bool = True
    decimals: int = 1


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


# fmt: off
CURATED = [
    FieldSpec(31, "Sex", "categorical", lambda P, r: P.male.astype(float), instanced=False),
    FieldSpec(34, "Year of birth", "integer", lambda P, r: P.birth_year.astype(float), instanced=False),
    FieldSpec(52, "Month of birth", "ordinal", lambda P, r: P.birth_month.astype(float), instanced=False),
    FieldSpec(21003, "Age when attended assessment centre", "integer", lambda P, r: np.floor(P.age)),
    FieldSpec(21000, "Ethnic background", "categorical", lambda P, r: P.ethnicity.astype(float), codes=(-1, -3)),
    FieldSpec(20116, "Smoking status", "categorical", lambda P, r: P.smoking.astype(float), codes=(-3,)),
    FieldSpec(2443, "Diabetes diagnosed by doctor", "categorical", lambda P, r: P.diabetes.astype(float), codes=(-1, -3)),
    FieldSpec(30750, "Glycated haemoglobin (HbA1c)", "continuous", lambda P, r: P.hba1c, "biochemistry"),
    FieldSpec(5262, "Intra-ocular pressure, corneal-compensated (left)", "continuous", lambda P, r: P.iop + 1.2 * r.standard_normal(P.n), "eye"),
    FieldSpec(5254, "Intra-ocular pressure, corneal-compensated (right)", "continuous", lambda P, r: P.iop + 1.2 * r.standard_normal(P.n), "eye"),
    FieldSpec(21001, "Body mass index (BMI)", "continuous", lambda P, r: P.bmi, decimals=2),
    FieldSpec(4080, "Systolic blood pressure, automated reading", "integer", lambda P, r: np.round(P.sbp)),
    FieldSpec(4079, "Diastolic blood pressure, automated reading", "integer", lambda P, r: np.round(0.45 * P.sbp + 20 + 7 * r.standard_normal(P.n))),
    FieldSpec(50, "Standing height", "continuous", lambda P, r: P.height),
    FieldSpec(21002, "Weight", "continuous", lambda P, r: P.bmi * (P.height / 100) ** 2),
    FieldSpec(48, "Waist circumference", "integer", lambda P, r: np.round(62 + 1.1 * P.bmi + 9 * P.male + 4 * r.standard_normal(P.n))),
    FieldSpec(49, "Hip circumference", "integer", lambda P, r: np.round(70 + 1.2 * P.bmi + 4 * r.standard_normal(P.n))),
    FieldSpec(102, "Pulse rate, automated reading", "integer", lambda P, r: np.round(69 + 11 * _lat(P, r, {METAB: 0.3, FRAILTY: 0.3}))),
    FieldSpec(189, "Townsend deprivation index at recruitment", "continuous", lambda P, r: -1.3 + 3.0 * _lat(P, r, {SOCIO: -1.0}, 0.5), decimals=2),
    FieldSpec(738, "Average total household income before tax", "ordinal", lambda P, r: _categories(_lat(P, r, {SOCIO: 1.0}), [1, 2, 3, 4, 5], [22, 26, 25, 19, 8]), codes=(-1, -3)),
    FieldSpec(6138, "Qualifications", "categorical", lambda P, r: _categories(_lat(P, r, {SOCIO: 1.0}), [-7, 4, 3, 5, 6, 2, 1], [17, 5, 21, 6, 5, 11, 35]), codes=(-3,)),
    FieldSpec(1558, "Alcohol intake frequency", "ordinal", lambda P, r: _categories(_lat(P, r, {LIFESTYLE: -0.8, SOCIO: -0.3}), [1, 2, 3, 4, 5, 6], [20, 23, 26, 11, 12, 8]), codes=(-3,)),
    FieldSpec(20117, "Alcohol drinker status", "categorical", lambda P, r: _categories(_lat(P, r, {LIFESTYLE: -0.5}), [2, 1, 0], [92, 4, 4]), codes=(-3,)),
    FieldSpec(2178, "Overall health rating", "ordinal", lambda P, r: _categories(_lat(P, r, {FRAILTY: 1.0, METAB: 0.4}), [1, 2, 3, 4], [17, 58, 21, 4]), codes=(-1, -3)),
    FieldSpec(1160, "Sleep duration", "integer", lambda P, r: np.clip(np.round(7.1 + 1.1 * _lat(P, r, {FRAILTY: -0.3})), 2, 14), codes=(-1, -3)),
    FieldSpec(1050, "Time spend outdoors in summer", "integer", lambda P, r: np.clip(np.round(3.7 + 2.3 * _lat(P, r, {LIFESTYLE: 0.6})), 0, 16), codes=(-1, -3), less_than_one=True),
    FieldSpec(1060, "Time spent outdoors in winter", "integer", lambda P, r: np.clip(np.round(1.8 + 1.4 * _lat(P, r, {LIFESTYLE: 0.6})), 0, 12), codes=(-1, -3), less_than_one=True),
    FieldSpec(1717, "Skin colour", "ordinal", lambda P, r: _categories(r.standard_normal(P.n) + 3 * (P.ethnicity > 2000), [1, 2, 3, 4, 5, 6], [30, 55, 8, 3, 2, 2]), codes=(-1, -3)),
    FieldSpec(1727, "Ease of skin tanning", "ordinal", lambda P, r: _categories(r.standard_normal(P.n), [1, 2, 3, 4], [12, 43, 30, 15]), codes=(-1, -3)),
    FieldSpec(2207, "Wears glasses or contact lenses", "categorical", lambda P, r: (r.random(P.n) < 0.6 + 0.3 * (P.age > 55)).astype(float), codes=(-3,)),
    FieldSpec(5255, "Intra-ocular pressure, Goldmann-correlated (right)", "continuous", lambda P, r: P.iop - 0.4 + 1.5 * r.standard_normal(P.n), "eye"),
    FieldSpec(5263, "Intra-ocular pressure, Goldmann-correlated (left)", "continuous", lambda P, r: P.iop - 0.4 + 1.5 * r.standard_normal(P.n), "eye"),
    FieldSpec(5084, "Spherical power (right)", "continuous", lambda P, r: -0.2 + 2.2 * _lat(P, r, {EYE: 0.7}), "eye", decimals=2),
    FieldSpec(5085, "Spherical power (left)", "continuous", lambda P, r: -0.2 + 2.2 * _lat(P, r, {EYE: 0.7}), "eye", decimals=2),
    FieldSpec(30690, "Cholesterol", "continuous", lambda P, r: 5.7 + 1.1 * _lat(P, r, {METAB: 0.4}), "biochemistry", decimals=3),
    FieldSpec(30760, "HDL cholesterol", "continuous", lambda P, r: np.clip(1.45 + 0.38 * _lat(P, r, {METAB: -0.7}) - 0.25 * P.male, 0.3, None), "biochemistry", decimals=3),
    FieldSpec(30780, "LDL direct", "continuous", lambda P, r: 3.55 + 0.87 * _lat(P, r, {METAB: 0.4}), "biochemistry", decimals=3),
    FieldSpec(30870, "Triglycerides", "continuous", lambda P, r: np.exp(0.35 + 0.5 * _lat(P, r, {METAB: 0.8})), "biochemistry", decimals=3),
    FieldSpec(30740, "Glucose", "continuous", lambda P, r: 4.9 + 0.6 * _lat(P, r, {METAB: 0.5}) + 2.8 * P.diabetes, "biochemistry", decimals=3),
    FieldSpec(30700, "Creatinine", "continuous", lambda P, r: 62 + 15 * P.male + 14 * _lat(P, r, {FRAILTY: 0.4}), "biochemistry"),
    FieldSpec(30710, "C-reactive protein", "continuous", lambda P, r: np.exp(0.3 + 1.0 * _lat(P, r, {METAB: 0.5, FRAILTY: 0.4})), "biochemistry", decimals=2),
    FieldSpec(30000, "White blood cell (leukocyte) count", "continuous", lambda P, r: 6.9 + 1.8 * _lat(P, r, {BLOOD: 0.7, METAB: 0.3}), "blood_count", decimals=2),
    FieldSpec(30010, "Red blood cell (erythrocyte) count", "continuous", lambda P, r: 4.3 + 0.5 * P.male + 0.35 * _lat(P, r, {BLOOD: 0.7}), "blood_count", decimals=3),
    FieldSpec(30020, "Haemoglobin concentration", "continuous", lambda P, r: 13.5 + 1.6 * P.male + 1.0 * _lat(P, r, {BLOOD: 0.7}), "blood_count", decimals=2),
    FieldSpec(30080, "Platelet count", "continuous", lambda P, r: 250 + 58 * _lat(P, r, {BLOOD: 0.5}), "blood_count"),
    FieldSpec(3062, "Forced vital capacity (FVC)", "continuous", lambda P, r: 3.2 + 1.1 * P.male - 0.03 * (P.age - 55) + 0.6 * _lat(P, r, {FRAILTY: -0.5}), "spirometry", decimals=2),
    FieldSpec(3063, "Forced expiratory volume in 1-second (FEV1)", "continuous", lambda P, r: 2.5 + 0.8 * P.male - 0.03 * (P.age - 55) + 0.5 * _lat(P, r, {FRAILTY: -0.5, LIFESTYLE: -0.3}), "spirometry", decimals=2),
    FieldSpec(23099, "Body fat percentage", "continuous", lambda P, r: 36 - 10 * P.male + 1.0 * (P.bmi - 27) + 2 * r.standard_normal(P.n), "impedance"),
    FieldSpec(46, "Hand grip strength (left)", "integer", lambda P, r: np.round(np.clip(22 + 16 * P.male - 0.25 * (P.age - 55) + 5 * _lat(P, r, {FRAILTY: -0.6}), 2, None)), "grip"),
    FieldSpec(47, "Hand grip strength (right)", "integer", lambda P, r: np.round(np.clip(24 + 17 * P.male - 0.25 * (P.age - 55) + 5 * _lat(P, r, {FRAILTY: -0.6}), 2, None)), "grip"),
    FieldSpec(884, "Number of days/week of moderate physical activity 10+ minutes", "ordinal", lambda P, r: _categories(_lat(P, r, {LIFESTYLE: 0.8}), list(range(8)), [12, 7, 11, 13, 9, 15, 4, 29]), codes=(-1, -3)),
    FieldSpec(904, "Number of days/week of vigorous physical activity 10+ minutes", "ordinal", lambda P, r: _categories(_lat(P, r, {LIFESTYLE: 0.8}), list(range(8)), [30, 12, 16, 15, 7, 8, 2, 10]), codes=(-1, -3)),
    FieldSpec(1289, "Cooked vegetable intake", "integer", lambda P, r: np.clip(np.round(2.8 + 1.8 * _lat(P, r, {LIFESTYLE: 0.5})), 0, 15), codes=(-1, -3), less_than_one=True),
    FieldSpec(1309, "Fresh fruit intake", "integer", lambda P, r: np.clip(np.round(2.2 + 1.6 * _lat(P, r, {LIFESTYLE: 0.5})), 0, 15), codes=(-1, -3), less_than_one=True),
    FieldSpec(1488, "Tea intake", "integer", lambda P, r: np.clip(np.round(3.4 + 2.7 * r.standard_normal(P.n)), 0, 20), codes=(-1, -3), less_than_one=True),
    FieldSpec(1498, "Coffee intake", "integer", lambda P, r: np.clip(np.round(1.9 + 2.0 * r.standard_normal(P.n)), 0, 15), codes=(-1, -3), less_than_one=True),
    FieldSpec(6150, "Vascular/heart problems diagnosed by doctor", "categorical", lambda P, r: _categories(_lat(P, r, {METAB: 0.7, FRAILTY: 0.4}) + 0.05 * (P.age - 55), [-7, 4, 2, 1, 3], [70, 23, 3, 2, 2]), codes=(-3,)),
    FieldSpec(2453, "Cancer diagnosed by doctor", "categorical", lambda P, r: (r.random(P.n) < 0.04 + 0.003 * (P.age - 40)).astype(float), codes=(-1, -3)),
    FieldSpec(2463, "Fractured/broken bones in last 5 years", "categorical", lambda P, r: (r.random(P.n) < 0.09).astype(float), codes=(-1, -3)),
    FieldSpec(2090, "Seen doctor (GP) for nerves, anxiety, tension or depression", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.5})) > 0.66).astype(float), codes=(-1, -3)),
    FieldSpec(2316, "Wheeze or whistling in the chest in last year", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.5, LIFESTYLE: -0.3})) > 0.8).astype(float), codes=(-1, -3)),
    FieldSpec(137, "Number of treatments/medications taken", "integer", lambda P, r: r.poisson(np.clip(1.5 + 0.1 * (P.age - 55) + 1.2 * P.z[:, FRAILTY] + 2 * P.diabetes, 0.1, None)).astype(float)),
    FieldSpec(20015, "Sitting height", "continuous", lambda P, r: 0.52 * P.height + 3 * r.standard_normal(P.n)),
    FieldSpec(1920, "Mood swings", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.55).astype(float), codes=(-1, -3)),
    FieldSpec(1930, "Miserableness", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.6).astype(float), codes=(-1, -3)),
    FieldSpec(1940, "Irritability", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.3})) > 0.72).astype(float), codes=(-1, -3)),
    FieldSpec(1950, "Sensitivity / hurt feelings", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.3})) > 0.48).astype(float), codes=(-1, -3)),
    FieldSpec(1960, "Fed-up feelings", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.6).astype(float), codes=(-1, -3)),
    FieldSpec(1970, "Nervous feelings", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.78).astype(float), codes=(-1, -3)),
    FieldSpec(1980, "Worrier / anxious feelings", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.58).astype(float), codes=(-1, -3)),
    FieldSpec(1990, "Tense / 'highly strung'", "categorical", lambda P, r: (_u(_lat(P, r, {FRAILTY: 0.4})) > 0.84).astype(float), codes=(-1, -3)),
]
# fmt: on

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
            out.append(FieldSpec(fid, f"Synthetic measure {i + 1}", "continuous", make, block, decimals=3))
        elif kind == "categorical":
            k = int(rng.integers(2, 6))
            probs = rng.dirichlet(np.full(k, 2.0))
            make = (lambda ks, ps, l: lambda P, r: _categories(_lat(P, r, l), ks, ps).astype(float))(list(range(1, k + 1)), probs, loads)
            out.append(FieldSpec(fid, f"Synthetic category {i + 1}", "categorical", make, block, codes=(-1, -3)))
        else:
            probs = rng.dirichlet(np.full(5, 3.0))
            make = (lambda ps, l: lambda P, r: _categories(_lat(P, r, l), [1, 2, 3, 4, 5], ps).astype(float))(probs, loads)
            out.append(FieldSpec(fid, f"Synthetic rating {i + 1}", "ordinal", make, block, codes=(-1, -3)))
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
            answered = ~np.isnan(v)
            coded = answered & (rng.random(n) < missing["negative_code_rate"])
            v[coded] = rng.choice(spec.codes, coded.sum())
            counts["codes"] = int(coded.sum())
        if spec.less_than_one:
            zero = v == 0
            v[zero] = F.LESS_THAN_ONE
            counts["less_than_one"] = int(zero.sum())
        exported[spec.field] = v
        report[spec.field] = counts
    return exported, report
