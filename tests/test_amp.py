"""Mixed precision (train.amp): the op lists that put Conv3D in half precision and keep the FFT in
float32, the settings' checks, the flag and habits that set it, and CPU training unchanged."""
import pytest

import ppeye
from conftest import DEMO
from ppeye.core.errors import ConfigError
from ppeye.core.paddle_env import import_paddle
from ppeye.engine.amp import CONV3D_WHITE_LIST, FFT_BLACK_LIST, amp_settings, autocast

paddle = import_paddle()


def test_the_lists_add_what_paddles_o1_leaves_out_and_keep_the_fft_in_float32():
    from paddle.amp import amp_lists

    default_white = amp_lists.white_list()["bfloat16"]["O1"]
    assert "conv2d" in default_white and "conv3d" not in default_white      # why ppeye adds its own
    s = amp_settings({"enabled": True, "dtype": "bfloat16", "level": "O1"}, "gpu:0")
    assert {"conv3d", "pool3d"} <= s["custom_white_list"] == set(CONV3D_WHITE_LIST)
    assert s["custom_black_list"] == set(FFT_BLACK_LIST) and not s["custom_white_list"] & s["custom_black_list"]
    assert s["scaler"] is False                                               # bfloat16: no loss scaling
    assert amp_settings({"enabled": True, "dtype": "float16", "level": "O1"}, "gpu:1")["scaler"] is True
    assert amp_settings({"enabled": False, "dtype": "float16", "level": "O1"}, "gpu:0") is None
    assert amp_settings({"enabled": True, "dtype": "bfloat16", "level": "O1"}, "cpu") is None


@pytest.mark.parametrize("section, message", [({"enabled": True, "dtype": "fp8"}, "dtype must be one of"),
                                              ({"enabled": True, "level": "O3"}, "level must be one of"),
                                              ({"enabled": True, "half": True}, "unknown keys"),
                                              ("yes", "must be a mapping")])
def test_bad_amp_settings_are_refused_naming_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        amp_settings(section, "gpu:0")


def test_autocast_passes_the_lists_to_paddle(monkeypatch):
    seen = {}
    monkeypatch.setattr(paddle.amp, "auto_cast", lambda **kw: seen.update(kw) or "ctx")
    assert autocast(paddle, amp_settings({"enabled": True, "dtype": "bfloat16", "level": "O1"}, "gpu:0")) == "ctx"
    assert seen["enable"] is True and seen["dtype"] == "bfloat16" and "conv3d" in seen["custom_white_list"]
    assert "fft_r2c" in seen["custom_black_list"]
    seen.clear()
    autocast(paddle, None)
    assert seen == {"enable": False}


def test_the_flag_and_the_habits_set_train_amp_enabled():
    from ppeye.core.habits import habit_hint

    cfg = ppeye.load_config(DEMO, ["train.amp.enabled=true", "train.amp.dtype=float16"])
    assert cfg["train"]["amp"] == {"enabled": True, "dtype": "float16", "level": "O1"}
    assert "train.amp.enabled" in habit_hint("use_amp") and "train.amp.enabled" in habit_hint("amp")


def test_on_a_cpu_amp_says_so_and_the_forward_is_float32(monkeypatch):
    """Paddle's AMP does nothing on a CPU: the autocast context leaves a Conv3D in float32."""
    conv = paddle.nn.Conv3D(2, 3, 3)
    x = paddle.randn([1, 2, 4, 5, 5])
    with autocast(paddle, amp_settings({"enabled": True, "dtype": "bfloat16", "level": "O1"}, "cpu")):
        y = conv(x)
    assert y.dtype == paddle.float32
