import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def requirements():
    with open(os.path.join(HERE, "requirements.txt")) as f:
        return [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]


setup(
    name="ppeye",
    version="0.1.0",
    description="Eye-disease onset from ERA5-Land weather and UK Biobank features, in PaddlePaddle",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ppeye", "ppeye.*"]),
    python_requires=">=3.11",
    install_requires=requirements(),
    extras_require={"test": ["pytest==8.4.2"], "cluster": ["distributed==2025.7.0"]},
    include_package_data=True,
)
