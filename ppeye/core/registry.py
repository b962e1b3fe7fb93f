"""Registries: components are registered by name and built from their config section.

A config section names its component with ``type`` and passes the other keys as
keyword arguments::

    model:
      type: OnsetNet
      width: 512

    MODELS.build(cfg.model)  # OnsetNet(width=512)
"""
import difflib
import inspect

from .errors import RegistryError

TYPE_KEY = "type"


class Registry:
    """A name -> class (or factory function) table for one kind of component."""

    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, obj=None, *, name=None):
        """Register ``obj`` under ``name`` (default: its ``__name__``); usable as a decorator."""

        def add(target):
            key = name or target.__name__
            if key in self._items and self._items[key] is not target:
                raise RegistryError(f"{self.kind} '{key}' is already registered (by {self._items[key]!r})")
            self._items[key] = target
            return target

        return add(obj) if obj is not None else add

    def names(self):
        return sorted(self._items)

    def __contains__(self, name):
        return name in self._items

    def __len__(self):
        return len(self._items)

    def get(self, name):
        if name not in self._items:
            near = difflib.get_close_matches(str(name), self._items, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            known = ", ".join(self.names()) or "(none yet)"
            raise RegistryError(f"unknown {self.kind} '{name}'.{hint} Registered {self.kind}s: {known}")
        return self._items[name]

    def build(self, section, **extra):
        """Build from a config section: ``type`` picks the component, the rest are kwargs.

        ``extra`` keyword arguments (e.g. sizes computed at run time) are passed too
        and win over the section. Keys that the component does not accept are an
        error naming the accepted ones.
        """
        if not isinstance(section, dict) or TYPE_KEY not in section:
            raise RegistryError(f"a {self.kind} config section needs a '{TYPE_KEY}' key, got {section!r}")
        kwargs = {k: v for k, v in section.items() if k != TYPE_KEY}
        kwargs.update(extra)
        target = self.get(section[TYPE_KEY])
        _check_kwargs(self.kind, section[TYPE_KEY], target, kwargs)
        return target(**kwargs)


def _check_kwargs(kind, name, target, kwargs):
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise RegistryError(
            f"{kind} '{name}' does not take {', '.join(repr(u) for u in unknown)}; "
            f"it takes: {', '.join(accepted) or '(nothing)'}"
        )
    missing = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in kwargs
    ]
    if missing:
        raise RegistryError(f"{kind} '{name}' needs {', '.join(repr(m) for m in missing)} in its config section")


# What is built by name from a config section. Optimizers and schedulers are chosen by
# ``optimizer.type`` / ``scheduler.type`` in ppeye/engine/trainer.py (four and three kinds).
MODELS = Registry("model")
LOSSES = Registry("loss")
CALLBACKS = Registry("callback")
