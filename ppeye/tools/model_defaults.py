"""Write the model's defaults (``ppeye/core/model_config.py``) into its base config.

    python -m ppeye.tools.model_defaults            # print the model: block
    python -m ppeye.tools.model_defaults --check    # exit 1 if configs/_base_/model/onset_net.yaml is stale
    python -m ppeye.tools.model_defaults --write    # rewrite that block in place

The block sits between two marker lines of ``configs/_base_/model/onset_net.yaml``; the rest of
that file (loss, retrieval) is written by hand. The defaults exist once, in the dataclasses; the
YAML shows them, with their one-line docs as comments.
"""
import argparse
import dataclasses
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core.io import atomic_write  # noqa: E402
from ppeye.core.model_config import ModelConfig  # noqa: E402
from ppeye.core.shipped import PACKAGED_CONFIGS  # noqa: E402

BEGIN_PREFIX = "# --- begin: written by python -m ppeye.tools.model_defaults"
BEGIN = BEGIN_PREFIX + " from ppeye/core/model_config.py; edit there ---"
END = "# --- end of the written block ---"
COMMENT_COLUMN = 32
BASE_FILE = os.path.join(PACKAGED_CONFIGS, "_base_", "model", "onset_net.yaml")


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _flow(obj):
    return "{" + ", ".join(f"{f.name}: {_scalar(getattr(obj, f.name))}" for f in dataclasses.fields(obj)) + "}"


def _line(text, doc):
    lines = [doc] if isinstance(doc, str) else list(doc)
    if not lines:
        return [text]
    pad = max(COMMENT_COLUMN - len(text), 2)
    out = [f"{text}{' ' * pad}# {lines[0]}"]
    out += [f"{' ' * max(COMMENT_COLUMN, len(text) + 1)}# {more}" for more in lines[1:]]
    return out


def _render(obj, indent):
    out = []
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), " " * indent + f.name + ":"
        if "section" in f.metadata and not f.metadata["flow"]:
            out += _line(key, f.metadata["doc"])
            out += _render(value, indent + 2)
        elif "section" in f.metadata:
            out += _line(f"{key} {_flow(value)}", f.metadata["doc"])
        else:
            out += _line(f"{key} {_scalar(value)}", f.metadata["doc"])
    return out


def render():
    """The model: block, marker lines included."""
    return "\n".join([BEGIN, "model:", *_render(ModelConfig(), 2), END]) + "\n"


def splice(text, path):
    """``text`` (a base config) with its written block replaced by the current one."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(BEGIN_PREFIX)]
    ends = [i for i, line in enumerate(lines) if line == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise SystemExit(f"{path}: needs one line starting {BEGIN_PREFIX!r} and, after it, one line {END!r}")
    return "\n".join(lines[:starts[0]] + render().rstrip("\n").split("\n") + lines[ends[0] + 1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=BASE_FILE, help=f"the base config holding the block (default {BASE_FILE})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if the file's block differs")
    group.add_argument("--write", action="store_true", help="rewrite the file's block")
    args = parser.parse_args(argv)
    if not (args.check or args.write):
        sys.stdout.write(render())
        return 0
    with open(args.file, encoding="utf-8") as f:
        text = f.read()
    new = splice(text, args.file)
    if args.check:
        if new != text:
            print(f"{args.file}: its model block differs from ppeye/core/model_config.py; "
                  f"run python -m ppeye.tools.model_defaults --write")
            return 1
        print(f"{args.file}: up to date")
        return 0
    if new != text:
        with atomic_write(args.file, encoding="utf-8") as f:
            f.write(new)
    print(f"{args.file}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
