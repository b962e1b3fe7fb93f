"""What every ``tools/*.py`` script shares: ``-c``/``-o`` parsing, flag mapping, errors.

A tool is a short script::

    parser = cli.make_parser(__doc__)
    parser.add_argument("--eval", action="store_true", help="...")
    args = parser.parse_args()
    cfg = cli.config_from_args(args, flags={"output_dir": args.output_dir})
    ...call one package function...

and runs ``cli.main(run)`` so that a user error prints one clear line instead of
a traceback (exit code 2),.
"""
import argparse
import os
import sys

from .config import Config, ConfigError, load_config
from .errors import PpeyeError

OVERRIDE_HELP = """\
overrides:
  -o key.path=value [key.path=value ...]   may be repeated; all groups apply in order.
  Values are YAML: -o train.epochs=5 data.box=[16,16] model.temporal.afno.enabled=false
  An unknown key is an error that suggests the nearest keys; prefix a key with +
  to add it on purpose: -o +model.note=baseline
"""

DEFAULT_CONFIG = os.path.join("configs", "demo.yaml")


def make_parser(description, config_required=True, config_default=DEFAULT_CONFIG, config_help=None):
    """An ``ArgumentParser`` with the ``-c/--config`` and ``-o/--opt`` flags of every tool.

    An optional config defaults to ``config_default`` (None: no config unless given)."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=OVERRIDE_HELP,
    )
    parser.add_argument(
        "-c",
        "--config",
        required=config_required,
        default=None if config_required else config_default,
        help="YAML config, e.g. configs/demo.yaml or configs/full.yaml"
        + (config_help or ("" if config_required or not config_default else f" (default: {config_default})")),
    )
    parser.add_argument(
        "-o",
        "--opt",
        nargs="+",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys (see 'overrides' below)",
    )
    return parser


def _truth(text):
    word = str(text).strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_switch(parser, *names, help):
    """A boolean flag that takes no value (``--eval``) or one the PaddleDetection way
    (``--eval=True``, ``--use_vdl false``); None when not given, so the config decides."""
    parser.add_argument(*names, nargs="?", const=True, default=None, type=_truth, metavar="BOOL",
                        help=f"{help} (no value: true)")


def set_existing(cfg, path, value):
    """Set the dotted key ``path`` that must already exist (used for CLI flags)."""
    parts = path.split(".")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"the config has no section '{part}' needed for {path}")
        node = node[part]
    if parts[-1] not in node:
        raise ConfigError(f"the config has no key '{path}' (is _BASE_ runtime.yaml missing?)")
    node[parts[-1]] = value


def config_from_args(args, flags=None):
    """Load ``args.config`` with ``args.opt`` overrides, then the tool's flags.

    ``flags`` maps dotted config keys to flag values; ``None`` values (flag not
    given) are skipped, so a flag only ever changes what the user asked for.
    Flags win over ``-o`` because they are the more specific request.
    """
    cfg = load_config(args.config, args.opt)
    for path, value in (flags or {}).items():
        if value is not None:
            set_existing(cfg, path, value)
    return cfg


def load_config_or_exit(path):
    """The config at ``path``, or exit with its error in one line (for tools that run others)."""
    try:
        return load_config(path)
    except PpeyeError as e:
        sys.exit(f"error: {e}")


def main(run):
    """Call ``run()`` and turn ppeye's user errors into a message and an exit code."""
    try:
        result = run()
    except PpeyeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(0 if result is None else int(result))


__all__ = ["Config", "make_parser", "config_from_args", "set_existing", "add_switch", "load_config_or_exit", "main"]
