"""UK Biobank conventions shared by the cohort builder and the synthetic generator."""

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
