"""Configs: YAML files with ``_BASE_`` inheritance and ``-o key.path=value`` overrides.

Rules (the same for every tool):

* files are read with ``yaml.safe_load`` and must hold a mapping;
* ``_BASE_: [a.yaml, b.yaml]`` lists files relative to the including file. They are
  loaded recursively and merged in order, later ones winning; the including file
  wins over all of its bases. A cycle is an error;
* dicts merge key by key, recursively; lists and scalars replace the whole value;
* an override ``key.path=value`` parses ``value`` as YAML and must name a key that
  exists in the merged config; ``+key.path=value`` adds a new key on purpose;
* an override must keep the key's type (an ``int`` stays an ``int``; a ``float``
  accepts an ``int``; a string accepts any scalar as typed; ``null`` is always
  allowed); a dict value merges into the existing section, checked key by key.

``load_config`` returns a fresh :class:`Config` every call; nothing is global.

The configs ship inside the package (``ppeye/configs``; ``configs/`` of a checkout links to it),
so an installed ppeye finds ``-c configs/demo.yaml`` from any directory: a relative path that
is not a file there but names a shipped config reads the shipped one, and says so in the log.
"""
import copy
import datetime
import difflib
import json
import os

import yaml

from .checks import check_values
from .errors import ConfigError
from .habits import habit_hint
from .io import atomic_write
from .shipped import resolve_config_path

BASE_KEY = "_BASE_"
NEW_KEY_PREFIX = "+"


class Config(dict):
    """A dict whose keys can also be read as attributes (``cfg.data.sites``).

    Nested mappings are Configs too. It is an ordinary dict otherwise: it copies,
    pickles and compares like one.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key, value in self.items():
            dict.__setitem__(self, key, _wrap(value))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}' (keys: {', '.join(map(str, self))})") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, _wrap(value))

    def __deepcopy__(self, memo):
        return Config(copy.deepcopy(dict(self), memo))

    def get_path(self, path, default=None):
        """Value at a dotted ``path`` (``"model.backbone.depth"``), or ``default``."""
        node = self
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def to_dict(self):
        """A plain nested dict/list copy, safe for ``yaml.safe_dump``."""
        return _unwrap(self)


def _wrap(value):
    if isinstance(value, Config):
        return value
    if isinstance(value, dict):
        return Config(value)
    if isinstance(value, (list, tuple)):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value):
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unwrap(v) for v in value]
    return value


# ----------------------------------------------------------------------------- files


def load_yaml(path):
    """Read one YAML file that must contain a mapping (or nothing)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def merge(base, other):
    """Recursively merge ``other`` into a deep copy of ``base`` (``other`` wins).

    >>> merge({"a": {"x": 1, "y": 2}, "l": [1, 2]}, {"a": {"y": 3}, "l": [9]})
    {'a': {'x': 1, 'y': 3}, 'l': [9]}
    """
    out = copy.deepcopy(base)
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_tree(path, chain):
    path = os.path.abspath(os.fspath(path))
    if path in chain:
        cycle = " -> ".join(os.path.relpath(p) for p in chain + [path])
        raise ConfigError(f"{BASE_KEY} cycle: {cycle}")
    data = load_yaml(path)
    bases = data.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a list of file paths, got {bases!r}")
    merged = {}
    for base in bases:
        base_path = os.path.join(os.path.dirname(path), base)
        if not os.path.isfile(base_path):
            raise ConfigError(f"{path}: {BASE_KEY} file not found: {base} (looked for {base_path})")
        merged = merge(merged, _load_tree(base_path, chain + [path]))
    if bases and not _is_base_piece(path):
        data = _checked_keys(merged, merged, data, path)
    return merge(merged, data)


def _is_base_piece(path):
    """A file under a ``_base_`` directory: one of the pieces that together define the keys."""
    return "_base_" in os.path.normpath(path).split(os.sep)[:-1]


def _checked_keys(root, base, data, path, prefix=""):
    """``data`` with every key checked against ``base`` (the merged ``_BASE_`` files), as ``-o``
    checks its keys: an unknown key is an error naming the nearest ones; ``+key`` adds one on
    purpose (the ``+`` is dropped). A section that is null in the base may be given as a mapping."""
    out = {}
    for key, value in data.items():
        name = str(key)
        if name.startswith(NEW_KEY_PREFIX):
            out[name[len(NEW_KEY_PREFIX):]] = value
            continue
        full = f"{prefix}{name}"
        if key not in base:
            near = _suggest(root, full)
            hint = habit_hint(full) or (f" Did you mean: {', '.join(near)}?" if near else "")
            raise ConfigError(f"{path}: unknown config key '{full}' (not in its {BASE_KEY} files).{hint}"
                              + ("" if habit_hint(full) else f" To add a new key on purpose write {NEW_KEY_PREFIX}{name}:"))
        if isinstance(value, dict) and isinstance(base[key], dict):
            out[key] = _checked_keys(root, base[key], value, path, full + ".")
        else:
            out[key] = value
    return out


def load_config(path, overrides=None):
    """Load ``path`` with its ``_BASE_`` files and apply ``overrides``.

    ``overrides`` is a list of ``"key.path=value"`` strings as given to ``-o``
    (nested lists, as argparse produces for a repeated ``-o``, are flattened).
    Returns a new :class:`Config`.
    """
    cfg = Config(_load_tree(resolve_config_path(path), []))
    apply_overrides(cfg, overrides or [])
    check_values(cfg)
    return cfg


def save_config(cfg, path):
    """Write ``cfg`` as YAML atomically; :func:`load_config` reads it back equal."""
    data = cfg.to_dict() if isinstance(cfg, Config) else _unwrap(cfg)
    with atomic_write(path) as f:
        yaml.safe_dump(data, f, sort_keys=False, default_flow_style=None, allow_unicode=True)


# ----------------------------------------------------------------------------- overrides


def _flatten(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def parse_override(text):
    """Split ``"[+]key.path=value"`` into ``(path, value, raw, is_new)``."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    is_new = key.startswith(NEW_KEY_PREFIX)
    if is_new:
        key = key[len(NEW_KEY_PREFIX):]
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"override {text!r}: empty key or empty part in {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {e}") from None
    except ValueError as e:           # YAML read it as a date that does not exist (2019-13-01)
        raise ConfigError(f"override {text!r}: {raw.strip()!r} is not a valid value ({e})") from None
    return key, value, raw.strip(), is_new


def apply_overrides(cfg, overrides):
    """Apply ``-o`` strings to ``cfg`` in place (see the module docstring)."""
    for text in _flatten(overrides):
        path, value, raw, is_new = parse_override(text)
        _set_path(cfg, path, value, raw, is_new, text)
    return cfg


def all_key_paths(cfg, prefix=""):
    """Every dotted key path in ``cfg`` (sections and leaves)."""
    paths = []
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        paths.append(path)
        if isinstance(value, dict):
            paths.extend(all_key_paths(value, path + "."))
    return paths


def _suggest(cfg, path):
    """Nearest existing keys: siblings first, then whole paths, then same-named keys elsewhere."""
    parts = path.split(".")
    node, depth = cfg, 0
    while depth < len(parts) - 1 and isinstance(node.get(parts[depth]), dict):
        node = node[parts[depth]]
        depth += 1
    prefix = ".".join(parts[:depth])
    siblings = difflib.get_close_matches(parts[depth], [str(k) for k in node], n=3, cutoff=0.6)
    near = [f"{prefix}.{k}" if prefix else k for k in siblings]
    candidates = all_key_paths(cfg)
    near += [c for c in difflib.get_close_matches(path, candidates, n=3, cutoff=0.8) if c not in near]
    near += [c for c in candidates if c.split(".")[-1] == parts[-1] and c not in near]
    return near[:4]


def _unknown_key(cfg, path, text):
    if habit_hint(path):
        return ConfigError(f"override {text!r}: unknown config key '{path}'.{habit_hint(path)}")
    near = _suggest(cfg, path)
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    return ConfigError(
        f"override {text!r}: unknown config key '{path}'.{hint} "
        f"To add a new key on purpose write -o {NEW_KEY_PREFIX}{text.lstrip(NEW_KEY_PREFIX)}"
    )


def _set_path(cfg, path, value, raw, is_new, text):
    parts = path.split(".")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if part not in node:
            if not is_new:
                raise _unknown_key(cfg, path, text)
            node[part] = Config()
        elif not isinstance(node[part], dict):
            raise ConfigError(
                f"override {text!r}: '{here}' is a {type(node[part]).__name__}, not a section, "
                f"so it has no key '{parts[i + 1]}'"
            )
        node = node[part]
    leaf = parts[-1]
    if leaf not in node:
        if not is_new:
            raise _unknown_key(cfg, path, text)
        node[leaf] = value
        return
    node[leaf] = _coerce(path, node[leaf], value, raw, text, is_new)


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


def _coerce(path, old, new, raw, text, is_new):
    """Return ``new`` converted to the type of ``old``, or raise a ConfigError."""

    def mismatch():
        return ConfigError(
            f"override {text!r}: '{path}' expects {_type_name(old)} "
            f"(current value {old if not isinstance(old, dict) else '{' + ', '.join(map(str, old)) + '}'}), "
            f"got {_type_name(new)} {new!r}"
        )

    if old is None or new is None:
        return new
    if isinstance(old, bool):
        if isinstance(new, bool):
            return new
        raise mismatch()
    if isinstance(old, int):
        if isinstance(new, int) and not isinstance(new, bool):
            return new
        raise mismatch()
    if isinstance(old, float):
        if isinstance(new, (int, float)) and not isinstance(new, bool):
            return float(new)
        raise mismatch()
    if isinstance(old, (str, datetime.date)):
        if isinstance(new, str):
            if isinstance(old, datetime.date):
                try:
                    return datetime.date.fromisoformat(new)
                except ValueError:
                    raise mismatch() from None
            return new
        if isinstance(new, datetime.date):
            return new if isinstance(old, datetime.date) else raw
        if isinstance(new, (int, float, bool)) and isinstance(old, str):
            return raw  # keep what the user typed: run name 007, tag yes
        raise mismatch()
    if isinstance(old, list):
        if isinstance(new, list):
            return new
        raise mismatch()
    if isinstance(old, dict):
        if not isinstance(new, dict):
            raise mismatch()
        out = Config(old)
        for key, value in new.items():
            sub = f"{path}.{key}"
            if key in out:
                out[key] = _coerce(sub, out[key], value, yaml.safe_dump(value).strip(), text, is_new)
            elif is_new:
                out[key] = value
            else:
                raise ConfigError(
                    f"override {text!r}: '{path}' has no key '{key}' "
                    f"(its keys: {', '.join(map(str, old))})"
                )
        return out
    raise mismatch()


def config_differences(theirs, mine, prefix=""):
    """``["key.path: A -> B", ...]`` for every leaf where two config dicts differ (``absent`` for a
    key one of them lacks), in key order."""
    out = []
    for key in sorted(set(theirs) | set(mine), key=str):
        a, b = theirs.get(key, "absent"), mine.get(key, "absent")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}")
    return out
