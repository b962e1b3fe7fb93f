"""UK Biobank conventions shared by the cohort builder and the synthetic generator."""
from dataclasses import dataclass
from typing import Optional, Tuple

# Negative codes that mean "no usable answer" in UK Biobank questionnaire fields:
# -1 do not know, -3 prefer not to answer, -121 and -818 their variants in some
# fields. Two negative codes are real answers, decoded per field: -7 "none of the
# above" (e.g. no qualifications in 6138) and -10 "less than one" (e.g. less than
# an hour outdoors in 1050).
MISSING_CODES = (-1, -3, -121, -818)
NONE_OF_THE_ABOVE = -7
LESS_THAN_ONE = -10

# Dates UK Biobank uses as markers rather than real event dates.
PLACEHOLDER_DATES = ("1900-01-01", "1901-01-01", "1902-02-02", "1903-03-03", "2037-07-07")

DISEASES = ("glaucoma", "cataract", "amd", "dr")
DISEASE_TITLES = {"glaucoma": "Glaucoma", "cataract": "Cataract", "amd": "Age-related macular degeneration (AMD)",
                  "dr": "Diabetic retinopathy (DR)"}


def disease_title(name):
    """The name a figure shows for a label (``amd`` -> Age-related macular degeneration (AMD)); others as given."""
    return DISEASE_TITLES.get(name, name)

# First-occurrence date fields (category 1712). H35 is "other retinal disorders",
# broader than AMD; H36 is "retinal disorders in diseases classified elsewhere".
FIRST_OCCURRENCE = {
    "glaucoma": (131186,),  # H40
    "cataract": (131164, 131166),  # H25 senile cataract, H26 other cataract
    "amd": (131182,),  # H35
    "dr": (131184,),  # H36
}

# Hospital inpatient ICD-10 diagnoses (41270) with their first dates (41280):
# code prefixes (without the dot) that confirm each disease.
ICD10_CONFIRM = {
    "glaucoma": ("H40",),
    "cataract": ("H25", "H26"),
    "amd": ("H353",),
    "dr": ("H360", "E103", "E113", "E123", "E133", "E143"),
}

EID = "eid"
SEX = 31
YEAR_OF_BIRTH = 34
MONTH_OF_BIRTH = 52
ASSESSMENT_DATE = 53
ASSESSMENT_CENTRE = 54
DEATH_DATE = 40000
ICD10_DIAGNOSES = 41270
ICD10_DATES = 41280


def ukbconv_column(field, instance=0, array=0):
    """``31-0.0`` style column name."""
    return f"{field}-{instance}.{array}"


def rap_column(field, instance=None, array=None):
    """Research Analysis Platform style: ``p31``, ``p53_i0``, ``p41270_a3``, ``p6150_i0_a1``."""
    name = f"p{field}"
    if instance is not None:
        name += f"_i{instance}"
    if array is not None:
        name += f"_a{array}"
    return name


@dataclass(frozen=True)
class FieldInfo:
    """A real UK Biobank feature field ppeye knows: how it is typed and recorded.

    ``kind`` is continuous, integer, ordinal or categorical; ``block`` names the measurement
    block that is missing as a whole (e.g. the eye measures, taken for a minority); ``codes``
    the negative "no answer" codes it can carry; ``less_than_one``: a count whose -10 means
    "less than one"; ``instanced``: recorded per assessment visit (``-0.0``) rather than once;
    ``decimals``: the precision it is recorded with. A multiple-answer field (kind ``multiple``)
    has ``arrays`` answers per visit and its data-coding's ``answers`` ((code, meaning), ...;
    ``coding``: the showcase id). The cohort builder takes a listed field's kind and codes from
    here; the synthetic generator makes a column for each (one per array).
    """

    field: int
    name: str
    kind: str
    block: Optional[str] = None
    codes: Tuple[int, ...] = ()
    less_than_one: bool = False
    instanced: bool = True
    decimals: int = 1
    arrays: int = 1
    answers: Tuple[Tuple[int, str], ...] = ()
    coding: int = 0


# fmt: off
KNOWN_FIELDS = (
    FieldInfo(31, "Sex", "categorical", instanced=False),
    FieldInfo(34, "Year of birth", "integer", instanced=False),
    FieldInfo(52, "Month of birth", "ordinal", instanced=False),
    FieldInfo(21003, "Age when attended assessment centre", "integer"),
    FieldInfo(21000, "Ethnic background", "categorical", codes=(-1, -3)),
    FieldInfo(20116, "Smoking status", "categorical", codes=(-3,)),
    FieldInfo(2443, "Diabetes diagnosed by doctor", "categorical", codes=(-1, -3)),
    FieldInfo(30750, "Glycated haemoglobin (HbA1c)", "continuous", "biochemistry"),
    FieldInfo(5262, "Intra-ocular pressure, corneal-compensated (left)", "continuous", "eye"),
    FieldInfo(5254, "Intra-ocular pressure, corneal-compensated (right)", "continuous", "eye"),
    FieldInfo(21001, "Body mass index (BMI)", "continuous", decimals=2),
    FieldInfo(4080, "Systolic blood pressure, automated reading", "integer"),
    FieldInfo(4079, "Diastolic blood pressure, automated reading", "integer"),
    FieldInfo(50, "Standing height", "continuous"),
    FieldInfo(21002, "Weight", "continuous"),
    FieldInfo(48, "Waist circumference", "integer"),
    FieldInfo(49, "Hip circumference", "integer"),
    FieldInfo(102, "Pulse rate, automated reading", "integer"),
    FieldInfo(189, "Townsend deprivation index at recruitment", "continuous", decimals=2),
    FieldInfo(738, "Average total household income before tax", "ordinal", codes=(-1, -3)),
    FieldInfo(6138, "Qualifications", "categorical", codes=(-3,)),
    FieldInfo(1558, "Alcohol intake frequency", "ordinal", codes=(-3,)),
    FieldInfo(20117, "Alcohol drinker status", "categorical", codes=(-3,)),
    FieldInfo(2178, "Overall health rating", "ordinal", codes=(-1, -3)),
    FieldInfo(1160, "Sleep duration", "integer", codes=(-1, -3)),
    FieldInfo(1050, "Time spend outdoors in summer", "integer", codes=(-1, -3), less_than_one=True),
    FieldInfo(1060, "Time spent outdoors in winter", "integer", codes=(-1, -3), less_than_one=True),
    FieldInfo(1717, "Skin colour", "ordinal", codes=(-1, -3)),
    FieldInfo(1727, "Ease of skin tanning", "ordinal", codes=(-1, -3)),
    FieldInfo(2207, "Wears glasses or contact lenses", "categorical", codes=(-3,)),
    FieldInfo(5255, "Intra-ocular pressure, Goldmann-correlated (right)", "continuous", "eye"),
    FieldInfo(5263, "Intra-ocular pressure, Goldmann-correlated (left)", "continuous", "eye"),
    FieldInfo(5084, "Spherical power (right)", "continuous", "eye", decimals=2),
    FieldInfo(5085, "Spherical power (left)", "continuous", "eye", decimals=2),
    FieldInfo(30690, "Cholesterol", "continuous", "biochemistry", decimals=3),
    FieldInfo(30760, "HDL cholesterol", "continuous", "biochemistry", decimals=3),
    FieldInfo(30780, "LDL direct", "continuous", "biochemistry", decimals=3),
    FieldInfo(30870, "Triglycerides", "continuous", "biochemistry", decimals=3),
    FieldInfo(30740, "Glucose", "continuous", "biochemistry", decimals=3),
    FieldInfo(30700, "Creatinine", "continuous", "biochemistry"),
    FieldInfo(30710, "C-reactive protein", "continuous", "biochemistry", decimals=2),
    FieldInfo(30000, "White blood cell (leukocyte) count", "continuous", "blood_count", decimals=2),
    FieldInfo(30010, "Red blood cell (erythrocyte) count", "continuous", "blood_count", decimals=3),
    FieldInfo(30020, "Haemoglobin concentration", "continuous", "blood_count", decimals=2),
    FieldInfo(30080, "Platelet count", "continuous", "blood_count"),
    FieldInfo(3062, "Forced vital capacity (FVC)", "continuous", "spirometry", decimals=2),
    FieldInfo(3063, "Forced expiratory volume in 1-second (FEV1)", "continuous", "spirometry", decimals=2),
    FieldInfo(23099, "Body fat percentage", "continuous", "impedance"),
    FieldInfo(46, "Hand grip strength (left)", "integer", "grip"),
    FieldInfo(47, "Hand grip strength (right)", "integer", "grip"),
    FieldInfo(884, "Number of days/week of moderate physical activity 10+ minutes", "ordinal", codes=(-1, -3)),
    FieldInfo(904, "Number of days/week of vigorous physical activity 10+ minutes", "ordinal", codes=(-1, -3)),
    FieldInfo(1289, "Cooked vegetable intake", "integer", codes=(-1, -3), less_than_one=True),
    FieldInfo(1309, "Fresh fruit intake", "integer", codes=(-1, -3), less_than_one=True),
    FieldInfo(1488, "Tea intake", "integer", codes=(-1, -3), less_than_one=True),
    FieldInfo(1498, "Coffee intake", "integer", codes=(-1, -3), less_than_one=True),
    FieldInfo(6150, "Vascular/heart problems diagnosed by doctor", "categorical", codes=(-3,)),
    FieldInfo(2453, "Cancer diagnosed by doctor", "categorical", codes=(-1, -3)),
    FieldInfo(2463, "Fractured/broken bones in last 5 years", "categorical", codes=(-1, -3)),
    FieldInfo(2090, "Seen doctor (GP) for nerves, anxiety, tension or depression", "categorical", codes=(-1, -3)),
    FieldInfo(2316, "Wheeze or whistling in the chest in last year", "categorical", codes=(-1, -3)),
    FieldInfo(137, "Number of treatments/medications taken", "integer"),
    FieldInfo(20015, "Sitting height", "continuous"),
    FieldInfo(1920, "Mood swings", "categorical", codes=(-1, -3)),
    FieldInfo(1930, "Miserableness", "categorical", codes=(-1, -3)),
    FieldInfo(1940, "Irritability", "categorical", codes=(-1, -3)),
    FieldInfo(1950, "Sensitivity / hurt feelings", "categorical", codes=(-1, -3)),
    FieldInfo(1960, "Fed-up feelings", "categorical", codes=(-1, -3)),
    FieldInfo(1970, "Nervous feelings", "categorical", codes=(-1, -3)),
    FieldInfo(1980, "Worrier / anxious feelings", "categorical", codes=(-1, -3)),
    FieldInfo(1990, "Tense / 'highly strung'", "categorical", codes=(-1, -3)),
)
# fmt: on
