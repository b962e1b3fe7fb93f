"""The docstring examples run (python -m doctest would need the package context): every module of
ppeye whose docstrings hold an example is found and its examples executed."""
import doctest
import importlib
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ppeye")


def modules_with_examples():
    out = []
    for folder, _, files in os.walk(ROOT):
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.endswith(".py") and ">>> " in open(path, encoding="utf-8").read():
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out.append(rel[: -len(".__init__")] if rel.endswith(".__init__") else rel)
    return sorted(out)


def test_the_examples_are_found():
    assert {"ppeye.core.model_config", "ppeye.core.io", "ppeye.modeling.layers.moe"} <= set(modules_with_examples())


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
