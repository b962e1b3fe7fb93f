"""The configs shipped inside the package (``ppeye/configs``; a checkout's ``configs/`` links
there): found from any directory, so an installed ppeye reads ``-c configs/demo.yaml`` without a
checkout, and says so in the log."""
import os

from .errors import ConfigError
from .logger import get_logger

PACKAGED_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def packaged_configs():
    """The configs shipped with ppeye, as paths relative to ``ppeye/configs`` (``demo.yaml``, ...)."""
    return sorted(f for f in os.listdir(PACKAGED_CONFIGS) if f.endswith(".yaml"))


def resolve_config_path(path):
    """``path`` when it is a file; else, for a relative ``configs/<name>.yaml`` or ``<name>.yaml``
    naming a config ppeye ships, the shipped file (logged). Otherwise a ConfigError that lists them."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    rel = os.path.normpath(path)
    if rel.split(os.sep)[0] == "configs":
        rel = os.path.relpath(rel, "configs")
    shipped = os.path.join(PACKAGED_CONFIGS, rel)
    if not os.path.isabs(path) and not rel.startswith("..") and os.path.isfile(shipped):
        get_logger("ppeye.config").info(f"{path}: not in {os.getcwd()}; reading the copy shipped with ppeye, {shipped}")
        return shipped
    raise ConfigError(f"config file not found: {path} (the configs shipped with ppeye: "
                      f"{', '.join('configs/' + f for f in packaged_configs())}; "
                      f"copy one to edit it: python -m ppeye.tools.configs --copy DIR)")
