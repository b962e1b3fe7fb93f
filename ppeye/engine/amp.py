"""Mixed precision that reaches the ResNet3D (``train.amp``).

Paddle's O1 lists put ``conv2d`` and the matmuls in half precision but not ``conv3d``: under
``auto_cast`` with the default lists every Conv3D of the day encoder, most of the model's FLOPs
at full size, stays in float32. So ppeye adds the 3D convolutions and pooling to the white
list, and keeps the FFT of the AFNO blocks in float32 (Paddle's FFT kernels, and ppeye's
spectral filters, are written for float32/64). bfloat16 (the default) has float32's range, so
no loss scaling; float16 gets a GradScaler. On a CPU, Paddle's AMP does nothing: ppeye says so
and trains in float32.

    train:
      amp: {enabled: true, dtype: bfloat16, level: O1}
"""
from ..core.errors import ConfigError

# ops Paddle's O1 white list leaves out that the day encoder spends its time in
CONV3D_WHITE_LIST = frozenset({"conv3d", "depthwise_conv3d", "conv3d_transpose", "pool3d", "max_pool3d_with_index"})
# ops kept in float32 whatever their inputs: the AFNO's Fourier transforms
FFT_BLACK_LIST = frozenset({"fft_r2c", "fft_c2r", "fft_c2c"})
DTYPES = ("bfloat16", "float16")
# O1 only: with Conv3D on the white list it puts the encoder's convolutions in half precision
# already; O2 (half-precision weights with float32 master copies via paddle.amp.decorate) would
# have to be re-applied to each training stage's optimizer, and cannot be tested without a GPU
LEVELS = ("O1",)


def amp_settings(section, device):
    """``train.amp`` checked -> the keyword arguments of ``paddle.amp.auto_cast`` plus ``scaler``
    (True for float16) and ``level``; None when off or when ``device`` is not a GPU.

    >>> s = amp_settings({"enabled": True, "dtype": "bfloat16", "level": "O1"}, "gpu:0")
    >>> s["dtype"], s["scaler"], "conv3d" in s["custom_white_list"], "fft_r2c" in s["custom_black_list"]
    ('bfloat16', False, True, True)
    >>> amp_settings({"enabled": True, "dtype": "bfloat16", "level": "O1"}, "cpu") is None
    True
    """
    if isinstance(section, bool) or section is None:
        section = {"enabled": bool(section)}
    if not isinstance(section, dict):
        raise ConfigError(f"train.amp must be a mapping {{enabled, dtype, level}}, got {section!r}")
    unknown = set(section) - {"enabled", "dtype", "level"}
    if unknown:
        raise ConfigError(f"train.amp: unknown keys {sorted(unknown)}; it takes enabled, dtype ({' | '.join(DTYPES)}) "
                          f"and level ({' | '.join(LEVELS)})")
    dtype, level = section.get("dtype", "bfloat16"), section.get("level", "O1")
    if dtype not in DTYPES:
        raise ConfigError(f"train.amp.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if level not in LEVELS:
        raise ConfigError(f"train.amp.level must be one of {', '.join(LEVELS)}, got {level!r}")
    if not section.get("enabled") or not str(device).startswith("gpu"):
        return None
    return {"dtype": dtype, "level": level, "custom_white_list": set(CONV3D_WHITE_LIST),
            "custom_black_list": set(FFT_BLACK_LIST), "scaler": dtype == "float16"}


def autocast(paddle, settings):
    """``paddle.amp.auto_cast`` for ``settings`` (:func:`amp_settings`; None: a disabled context)."""
    if settings is None:
        return paddle.amp.auto_cast(enable=False)
    return paddle.amp.auto_cast(enable=True, level=settings["level"], dtype=settings["dtype"],
                                custom_white_list=settings["custom_white_list"],
                                custom_black_list=settings["custom_black_list"])
