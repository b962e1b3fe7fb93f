"""Exceptions that the tools turn into clear one-line messages."""


class PpeyeError(Exception):
    """An error caused by the user's input (config, data, arguments), not a bug."""


class ConfigError(PpeyeError, ValueError):
    """A config file or override that cannot be used as written."""


class RegistryError(PpeyeError, KeyError):
    """A component name that is not registered, or arguments it does not take."""

    def __str__(self):  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class DataError(PpeyeError, ValueError):
    """Input data that does not follow its contract (names the file and field)."""


class InputError(PpeyeError, ValueError):
    """A tensor given to a model with the wrong rank, size, dtype or values (names the input)."""
