"""The planted diagnosis-history signal of the synthetic data (issue #29).

Two sets of hospital ICD-10 codes (field 41270, dates in 41280) are added to the export, each
dated in the five years before the person's assessment, so always before any index date (which
is after recruitment):

* **a common code**: myopia (``H521``, a known glaucoma risk factor) for a share ``rate_cases``
  of the future glaucoma cases and ``rate_others`` of everyone else;
* **a family of rare codes**: 24 chorioretinal codes (H30-H34, never H35, whose non-AMD codes
  would change the AMD outcome rule), one of them drawn at random for ``rate_cases`` of the
  future AMD cases and ``rate_others`` of everyone else: each code alone is seen in a few
  people, the family is a clear signal. A code embedding learned per code cannot learn it from
  so few people; one that starts from the codes' descriptions (all about the retina and
  choroid) can share what it learns among them.

The labels are drawn before this and are not changed by it (the signal is planted as an
association: people who go on to develop the disease carry the code more often), and it draws
from its own random stream, so every other column of the export is what it was without it.
"""
import numpy as np
import pandas as pd

COMMON = {"code": "H521", "title": "Myopia", "disease": "glaucoma", "rate_cases": 0.2, "rate_others": 0.05}
RARE = {"codes": {"H300": "Focal chorioretinal inflammation", "H301": "Disseminated chorioretinal inflammation",
                  "H302": "Posterior cyclitis", "H308": "Other chorioretinal inflammations",
                  "H309": "Chorioretinal inflammation, unspecified", "H310": "Chorioretinal scars",
                  "H311": "Choroidal degeneration", "H312": "Hereditary choroidal dystrophy",
                  "H313": "Choroidal haemorrhage and rupture", "H314": "Choroidal detachment",
                  "H318": "Other specified disorders of choroid",
                  "H320": "Chorioretinal inflammation in infectious and parasitic diseases classified elsewhere",
                  "H328": "Other chorioretinal disorders in diseases classified elsewhere",
                  "H330": "Retinal detachment with retinal break", "H331": "Retinoschisis and retinal cysts",
                  "H332": "Serous retinal detachment", "H333": "Retinal breaks without detachment",
                  "H334": "Traction detachment of retina", "H335": "Other retinal detachments",
                  "H340": "Transient retinal artery occlusion", "H341": "Central retinal artery occlusion",
                  "H342": "Other retinal artery occlusions", "H348": "Other retinal vascular occlusions",
                  "H349": "Retinal vascular occlusion, unspecified"},
        "disease": "amd", "rate_cases": 0.25, "rate_others": 0.01}
YEARS_BEFORE_ASSESSMENT = 5


def plant_history(people, labels, eligible, seed):
    """``(records, flags, truth)``: per person a list of ``(code, date)`` to add to their hospital
    diagnoses, boolean flags per person (``history_common``, ``history_rare``) for ``truth.csv``,
    and the plant's description for ``ground_truth.json``."""
    rng = np.random.default_rng([seed, 29])
    n = people.n
    records = [[] for _ in range(n)]
    span = int(YEARS_BEFORE_ASSESSMENT * 365.25)
    flags = {}
    for name, plant in (("common", COMMON), ("rare", RARE)):
        case = labels[plant["disease"]] & eligible
        has = rng.random(n) < np.where(case, plant["rate_cases"], plant["rate_others"])
        codes = [plant["code"]] if name == "common" else sorted(plant["codes"])
        which = rng.integers(0, len(codes), n)
        back = rng.integers(1, span + 1, n)
        for i in np.nonzero(has)[0]:
            records[i].append((codes[which[i]], people.assessment[i] - pd.Timedelta(days=int(back[i]))))
        flags[f"history_{name}"] = has
    truth = {
        "common": {**COMMON, "people": int(flags["history_common"].sum())},
        "rare": {**RARE, "people": int(flags["history_rare"].sum())},
        "dated": f"uniformly in the {YEARS_BEFORE_ASSESSMENT} years before the assessment date",
    }
    return records, flags, truth
