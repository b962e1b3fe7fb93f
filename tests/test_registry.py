"""Components are registered by name and built from their config section."""
import pytest

from ppeye.core.registry import MODELS, Registry, RegistryError


@pytest.fixture
def reg():
    r = Registry("model")

    @r.register
    class TinyNet:
        def __init__(self, width, depth=2):
            self.width, self.depth = width, depth

    @r.register(name="wide")
    def make_wide(width=512):
        return TinyNet(width)

    return r


def test_build_from_section(reg):
    net = reg.build({"type": "TinyNet", "width": 8})
    assert (net.width, net.depth) == (8, 2)
    assert reg.build({"type": "wide"}).width == 512


def test_extra_kwargs_win_over_the_section(reg):
    assert reg.build({"type": "TinyNet", "width": 8}, width=16).width == 16


def test_unknown_name_lists_registered_names_and_nearest(reg):
    with pytest.raises(RegistryError) as e:
        reg.build({"type": "TinyNett", "width": 1})
    msg = str(e.value)
    assert "unknown model 'TinyNett'" in msg and "Did you mean TinyNet" in msg and "TinyNet, wide" in msg


def test_unknown_and_missing_arguments_are_named(reg):
    with pytest.raises(RegistryError, match="does not take 'widht'; it takes: width, depth"):
        reg.build({"type": "TinyNet", "widht": 1})
    with pytest.raises(RegistryError, match="needs 'width'"):
        reg.build({"type": "TinyNet"})


def test_section_without_type(reg):
    with pytest.raises(RegistryError, match="needs a 'type' key"):
        reg.build({"width": 1})


def test_a_name_cannot_be_taken_twice(reg):
    with pytest.raises(RegistryError, match="already registered"):
        reg.register(lambda: None, name="wide")


def test_the_model_of_every_config_is_registered_and_built_by_name():
    import ppeye
    from conftest import DEMO

    assert type(ppeye.build_model(ppeye.load_config(DEMO))).__name__ == "OnsetNet"
    assert "OnsetNet" in MODELS
    with pytest.raises(RegistryError, match="OnsetNet"):      # an unknown name lists the registered ones
        MODELS.build({"type": "OnsetNett"})
