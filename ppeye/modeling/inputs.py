"""The inputs OnsetNet takes, checked before anything runs (shapes, dtypes, indices)."""
from ..core.errors import InputError
from ..core.paddle_env import import_paddle

paddle = import_paddle()

REQUIRED_BATCH_KEYS = ("weather_unique", "day_index", "tab")


def unpack_batch(batch):
    """The model's inputs from a batch dict, as ``ppeye.engine.predict.to_tensors`` makes of what
    the loader yields: (weather_unique, day_index, tab, tab_mask or None, weather_present or None).
    ``model(batch)`` calls this, so no caller unpacks a batch by hand (or forgets a key)."""
    missing = [k for k in REQUIRED_BATCH_KEYS if k not in batch]
    if missing:
        raise InputError(f"a model batch needs the keys {', '.join(REQUIRED_BATCH_KEYS)} (tab_mask and "
                         f"weather_present optional); missing: {', '.join(missing)}")
    return (batch["weather_unique"], batch["day_index"], batch["tab"], batch.get("tab_mask"),
            batch.get("weather_present"))


def check_inputs(s, pooled_width, weather_unique, day_index, tab, tab_mask):
    """Raise an InputError naming the input, the expected and the actual shape (``s``: the model's
    input sizes; ``pooled_width``: the ResNet's pooled width, or the widths a cache row may have,
    None without the weather branch)."""
    if tab is None or len(tab.shape) != 2 or int(tab.shape[1]) != s["F"]:
        raise InputError(f"tab must be [B, F={s['F']}], got {None if tab is None else list(tab.shape)}")
    if tab_mask is not None and (len(tab_mask.shape) != 2 or int(tab_mask.shape[1]) != s["F"]):
        raise InputError(f"tab_mask must have the shape of tab {list(tab.shape)}, got {list(tab_mask.shape)}")
    if pooled_width is None:       # patient-only: no weather inputs
        return
    expect = [s["C"], s["D"], s["H"], s["W"]]
    cached = len(weather_unique.shape) == 2
    widths = [pooled_width] if isinstance(pooled_width, int) else list(pooled_width)
    if cached and int(weather_unique.shape[1]) not in widths:
        raise InputError(f"cached day features must be [U, {' or '.join(map(str, widths))}] (the ResNet's pooled "
                         f"width{', or with the pooled volume the day decoder decodes' if len(widths) > 1 else ''}), "
                         f"got {list(weather_unique.shape)}: a cache of another backbone?")
    if not cached and (len(weather_unique.shape) != 5 or [int(v) for v in weather_unique.shape[1:]] != expect):
        raise InputError(f"weather_unique must be [U, C, D, H, W] = [U, {', '.join(map(str, expect))}], "
                         f"got {list(weather_unique.shape)}")
    if len(day_index.shape) != 2 or int(day_index.shape[1]) != s["T"]:
        raise InputError(f"day_index must be [B, T={s['T']}], got {list(day_index.shape)}")
    if day_index.dtype not in (paddle.int64, paddle.int32):
        raise InputError(f"day_index must be int64 (or int32), got {day_index.dtype}")
    if not paddle.in_dynamic_mode():  # batch sizes are symbolic while tracing for export
        return
    if int(day_index.shape[0]) != int(tab.shape[0]):
        raise InputError(f"day_index and tab disagree on the batch size: {day_index.shape[0]} vs {tab.shape[0]}")
    if tab_mask is not None and int(tab_mask.shape[0]) != int(tab.shape[0]):
        raise InputError(f"tab_mask must have the shape of tab {list(tab.shape)}, got {list(tab_mask.shape)}")
    # the range check reads two numbers back from the tensor: free on a CPU tensor, a wait for the
    # device on a GPU one (every forward), where the loaders' collator builds day_index in range
    if day_index.size > 0 and day_index.place.is_cpu_place():
        u = int(weather_unique.shape[0])
        lo, hi = int(day_index.min().item()), int(day_index.max().item())
        if lo < 0 or hi >= u:
            raise InputError(f"day_index values must index weather_unique's {u} volumes (0..{u - 1}), "
                             f"got values from {lo} to {hi}")
