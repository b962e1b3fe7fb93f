"""Config loading, the registry, logging, seeding, atomic IO and the tools' CLI."""
from .config import Config, apply_overrides, load_config, merge, save_config
from .errors import ConfigError, DataError, PpeyeError, RegistryError
from .io import atomic_directory, atomic_write
from .logger import get_logger
from .registry import CALLBACKS, LOSSES, MODELS, Registry
from .seed import seed_everything
