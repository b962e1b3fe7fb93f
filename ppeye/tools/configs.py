"""The configs shipped with ppeye: list them, or copy them out to edit.

    python tools/configs.py                    # list the shipped configs with their first comment line
    python -m ppeye.tools.configs --copy .     # write ./configs/ (demo.yaml, full.yaml, _base_/...)

The configs live inside the package (ppeye/configs; a checkout's configs/ links there), so an
installed ppeye reads `-c configs/demo.yaml` from any directory: when that path is not a file
where you run, the shipped copy is read and the log says so. A copy made here is yours to edit
(its _BASE_ files come along); files that already exist are never overwritten: the copy stops
before writing anything and names them.
"""
import argparse
import os
import shutil
import sys

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core.shipped import PACKAGED_CONFIGS  # noqa: E402


def shipped_files():
    """Every shipped YAML file, relative to ppeye/configs, sorted."""
    out = []
    for folder, _, files in os.walk(PACKAGED_CONFIGS):
        out += [os.path.relpath(os.path.join(folder, f), PACKAGED_CONFIGS) for f in files if f.endswith(".yaml")]
    return sorted(out)


def first_comment(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                return line.lstrip("# ").strip()
    return ""


def copy_to(dest):
    """Copy every shipped config into ``dest``/configs; refuses (writing nothing) if any exists."""
    target = os.path.join(dest, "configs")
    files = shipped_files()
    clash = [f for f in files if os.path.lexists(os.path.join(target, f))]
    if clash:
        raise SystemExit(f"{target}: {len(clash)} of the files exist already ({', '.join(clash[:4])}"
                         f"{', ...' if len(clash) > 4 else ''}); nothing was copied. Choose another --copy directory")
    for f in files:
        os.makedirs(os.path.dirname(os.path.join(target, f)), exist_ok=True)
        shutil.copyfile(os.path.join(PACKAGED_CONFIGS, f), os.path.join(target, f))
    return target, files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copy", metavar="DIR", default=None, help="write DIR/configs/ with every shipped config")
    args = parser.parse_args(argv)
    if args.copy:
        target, files = copy_to(args.copy)
        print(f"{len(files)} configs copied to {target}; run e.g. python tools/train.py -c {target}/demo.yaml")
        return 0
    print(f"configs shipped with ppeye ({PACKAGED_CONFIGS}):")
    for f in shipped_files():
        if os.sep not in f:
            print(f"  configs/{f:<22} {first_comment(os.path.join(PACKAGED_CONFIGS, f))}")
    print("base pieces (configs/_base_/...) are merged by the configs above; --copy DIR copies them all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
