"""Explanations: Grad-CAM, attention, AFNO spectra and MoE routing, on hand-made inputs and
on a tiny trained model."""
import json
import os

import numpy as np
import pytest

import ppeye
from conftest import DEMO, PIPE, TINY
from test_trainer import SMALL_MODEL
from ppeye.core.errors import InputError
from ppeye.core.paddle_env import import_paddle
from ppeye.explain import attention as att
from ppeye.explain import routing, spectrum
from ppeye.explain.gradcam import GradCAM3D, person_maps, pointing_game, region_energy_ratio, window_sum

paddle = import_paddle()
nn = paddle.nn


class Detector(nn.Layer):
    """A 'residual block' with two channels: channel 0 sees only voxel ``v``, channel 1 the rest."""

    def __init__(self, shape, v):
        super().__init__()
        mask = np.zeros(shape, np.float32)
        mask[v] = 1
        self.register_buffer("mask", paddle.to_tensor(mask))

    def forward(self, x):
        return paddle.concat([x * self.mask, x * (1 - self.mask)], axis=1)


class ToyModel(nn.Layer):
    """logit_j = c_j * (sum of the detector channel): depends on one voxel only."""

    def __init__(self, shape, v):
        super().__init__()
        self.backbone = nn.Layer()
        self.backbone.blocks = nn.LayerList([Detector(shape, v)])
        self.backbone.stem = nn.Identity()

    def forward(self, w, day_index, tab, tab_mask, return_explain=False):
        a = self.backbone.blocks[0](self.backbone.stem(w))                 # [U, 2, D, H, W]
        per_volume = a[:, 0].sum(axis=[1, 2, 3])                            # [U]
        per_person = paddle.gather(per_volume, day_index.reshape([-1])).reshape(day_index.shape).sum(1)
        logits = per_person[:, None] * paddle.to_tensor([1.0, 2.0, 0.5, 1.0])
        b, t = day_index.shape
        ex = {"patient_to_weather": paddle.ones([b, 1, 1, t])}
        return (logits, ex) if return_explain else logits


def test_gradcam_of_a_model_reading_one_voxel_peaks_at_that_voxel():
    shape, v = (4, 6, 6), (1, 2, 4)
    model = ToyModel(shape, v)
    rng = np.random.default_rng(0)
    w = paddle.to_tensor(rng.uniform(0.5, 1.5, (3, 1, *shape)).astype("float32"))
    day_index = paddle.to_tensor(np.array([[0, 1], [1, 2]], dtype="int64"))
    r = GradCAM3D(model, "backbone.blocks.0")(w, day_index, None, None)
    cam = r["cam"]                                                          # [4, U, D, H, W]
    assert cam.shape == (4, 3, *shape) and (cam >= 0).all()
    for j in range(4):
        for u in range(3):
            assert np.unravel_index(cam[j, u].argmax(), shape) == v
    spatial, hours = person_maps(cam, day_index.numpy(), r["day_weights"])
    assert spatial.shape == (2, 4, 6, 6) and hours.shape == (2, 4, 4)
    assert np.unravel_index(spatial[0, 0].argmax(), (6, 6)) == v[1:] and hours[0, 0].argmax() == v[0]
    # person 0 reads volumes 0 and 1 with equal attention: their map is the mean of those CAMs
    np.testing.assert_allclose(spatial[0, 1], 0.5 * (cam[1, 0] + cam[1, 1]).sum(0), rtol=1e-5)


class ContrastModel(nn.Layer):
    """logit = 2 x (mean inside a region) - (mean over the map): a spatial contrast, like the
    planted event. Its gradient is positive inside the region and negative outside."""

    def __init__(self, shape, rows, cols):
        super().__init__()
        mask = np.zeros(shape, np.float32)
        mask[:, rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = 1
        self.register_buffer("mask", paddle.to_tensor(mask))
        self.backbone = nn.Layer()
        self.backbone.blocks = nn.LayerList([nn.Identity()])
        self.backbone.stem = nn.Identity()

    def forward(self, w, day_index, tab, tab_mask, return_explain=False):
        a = self.backbone.blocks[0](self.backbone.stem(w))[:, 0]                                   # [U, D, H, W]
        per_volume = 2 * (a * self.mask).sum(axis=[1, 2, 3]) / self.mask.sum() - a.mean(axis=[1, 2, 3])
        first_day = paddle.gather(per_volume, day_index[:, 0])                                    # reads day 0 only
        logits = paddle.tile(first_day[:, None], [1, 4])
        b, t = day_index.shape
        focus = np.zeros((b, 1, 1, t), np.float32)
        focus[..., -1] = 1                                                                        # attends to the last day
        return (logits, {"patient_to_weather": paddle.to_tensor(focus)}) if return_explain else logits


def test_hirescam_finds_a_contrast_that_gradcam_averages_away():
    shape, rows, cols = (2, 8, 8), (1, 3), (4, 6)
    model = ContrastModel(shape, rows, cols)
    rng = np.random.default_rng(0)
    w = paddle.to_tensor(rng.uniform(0.5, 1.5, (2, 1, *shape)).astype("float32"))
    day_index = paddle.to_tensor(np.array([[0, 1]], dtype="int64"))
    area = 9 / 64
    spatial = {}
    for method in ("gradcam", "hirescam"):
        r = GradCAM3D(model, "backbone.blocks.0", method=method, day_weighting="gradient")(w, day_index, None, None)
        np.testing.assert_allclose(r["day_weights"], [[0.5, 0.5]])
        spatial[method] = person_maps(r["cam"], day_index.numpy(), r["day_weights"])[0][0, 0]
    # Grad-CAM: one channel, weight = mean gradient > 0, so the map is the input itself: chance
    assert 0.8 < region_energy_ratio(spatial["gradcam"], rows, cols) < 1.2
    # HiResCAM: gradient x activation per cell is > 0 inside and < 0 outside: all mass inside
    assert region_energy_ratio(spatial["hirescam"], rows, cols) == pytest.approx(1 / area)
    assert pointing_game(spatial["hirescam"][None], rows, cols) == 1.0


def test_input_maps_per_variable_add_up_to_the_logit():
    shape, rows, cols = (2, 8, 8), (1, 3), (4, 6)
    model = ContrastModel(shape, rows, cols)                 # reads variable 0 of day 0 only
    rng = np.random.default_rng(2)
    w = paddle.to_tensor(rng.uniform(0.5, 1.5, (2, 2, *shape)).astype("float32"))
    day_index = paddle.to_tensor(np.array([[0, 1]], dtype="int64"))
    cam = GradCAM3D(model, "input", method="hirescam", day_weighting="gradient")
    r = cam(w, day_index, None, None)
    assert cam.map_shape == shape and r["by_variable"].shape == (4, 2, 2, 8, 8)
    by_var = r["by_variable"]
    # the logit is linear in the input, so gradient x input sums to it exactly (Euler)
    np.testing.assert_allclose(by_var[:, 0, 0].sum((1, 2)), r["logits"][0], rtol=1e-5)
    assert (by_var[:, 0, 1] == 0).all() and (by_var[:, 1] == 0).all()       # variable 1 and day 1 unread
    assert (by_var[0, 0, 0][rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] > 0).all()
    assert (by_var[0, 0, 0] < 0).sum() == 64 - 9                           # outside: lowers the logit
    person = window_sum(by_var, day_index.numpy(), r["day_weights"])         # [B, J, C, H, W]
    np.testing.assert_allclose(person[0, :, 0], 0.5 * by_var[:, 0, 0], rtol=1e-6)
    with pytest.raises(InputError, match="'inputs' does not exist .* backbone.stem, input"):
        GradCAM3D(model, "inputs")


def test_day_weighting_attention_or_gradient():
    shape, rows, cols = (2, 8, 8), (1, 3), (4, 6)
    model = ContrastModel(shape, rows, cols)
    w = paddle.to_tensor(np.random.default_rng(1).uniform(0.5, 1.5, (2, 1, *shape)).astype("float32"))
    day_index = paddle.to_tensor(np.array([[0, 1]], dtype="int64"))
    # the logit reads day 0 while the attention sits on day 1 (volume 1, which no logit uses)
    by_att = GradCAM3D(model, method="hirescam", day_weighting="attention")(w, day_index, None, None)
    np.testing.assert_allclose(by_att["day_weights"], [[0.0, 1.0]])
    assert person_maps(by_att["cam"], day_index.numpy(), by_att["day_weights"])[0].max() == 0
    by_grad = GradCAM3D(model, method="hirescam", day_weighting="gradient")(w, day_index, None, None)
    assert (by_grad["cam"][:, 1] == 0).all() and by_grad["cam"][:, 0].max() > 0
    spatial = person_maps(by_grad["cam"], day_index.numpy(), by_grad["day_weights"])[0]
    np.testing.assert_allclose(spatial[0], 0.5 * by_grad["cam"][:, 0].sum(1), rtol=1e-6)
    with pytest.raises(InputError, match="method 'gradcam\\+\\+' is unknown; choose from gradcam, hirescam"):
        GradCAM3D(model, method="gradcam++")
    with pytest.raises(InputError, match="day weighting 'uniform' is unknown; choose from attention, gradient"):
        GradCAM3D(model, day_weighting="uniform")


def test_region_scores():
    m = np.zeros((2, 8, 8))
    m[0, 1:3, 4:6] = 1.0                                                  # all mass inside
    m[1] = 1.0                                                            # uniform: chance
    r = region_energy_ratio(m, (1, 2), (4, 5))
    np.testing.assert_allclose(r, [64 / 4, 1.0])
    assert pointing_game(m[:1], (1, 2), (4, 5)) == 1.0
    corner = np.zeros((1, 8, 8))
    corner[0, 7, 7] = 1.0
    assert pointing_game(corner, (1, 2), (4, 5)) == 0.0


def test_rollout_and_window_ratio():
    t = 5
    eye = np.eye(t)[None]
    np.testing.assert_allclose(att.rollout([eye, eye]), eye)
    rng = np.random.default_rng(1)
    a1, a2 = rng.random((2, 1, t, t))
    a1, a2 = a1 / a1.sum(-1, keepdims=True), a2 / a2.sum(-1, keepdims=True)
    mix = lambda a: (0.5 * a + 0.5 * np.eye(t)) / (0.5 * a + 0.5 * np.eye(t)).sum(-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(att.rollout([a1, a2]), mix(a2) @ mix(a1), rtol=1e-12)
    assert np.allclose(att.rollout([a1, a2]).sum(-1), 1)
    pos = att.window_positions(56, (7, 28))
    assert pos[0] == 28 and pos[-1] == 49 and len(pos) == 22
    imp = np.ones(56)
    imp[pos] = 3.0
    assert att.window_ratio(imp[None], pos)[0] == pytest.approx(3.0)


def test_spectrum_periods_and_ranks():
    T = 56
    p = spectrum.periods(T)
    assert np.isinf(p[0]) and p[4] == 14 and p[1] == 56
    values = np.zeros(T // 2 + 1)
    values[4], values[2], values[0] = 5.0, 3.0, 99.0                     # mode 0 never ranks
    assert spectrum.rank_of_period(values, T, 14) == 1
    assert list(spectrum.ranked_periods(values, T, 2)) == [14.0, 28.0]
    e_in = np.ones((6, 29))
    e_out = np.ones((6, 29)) * 0.5
    e_out[:3, 4] = 2.0
    s = spectrum.summarise(e_in, e_out, T, cases=np.array([1, 1, 1, 0, 0, 0], bool))
    assert s["gain"][0] == 0.5 and s["case_control_ratio"][4] == pytest.approx(4.0)


def test_routing_vectors_clusters_and_crosstabs():
    probs = np.concatenate([np.tile([[0.9, 0.1]], (6, 1)), np.tile([[0.2, 0.8]], (6, 1))])   # 4 people x 3 tokens
    ex = {"routing": {"fusion": {"probs": paddle.to_tensor(probs.astype("float32"))}}}
    v, spans = routing.routing_vectors(ex, 4)
    np.testing.assert_allclose(v, [[0.9, 0.1]] * 2 + [[0.2, 0.8]] * 2, rtol=1e-6)
    assert spans == {"fusion": (0, 2)}
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], 30)
    vecs = np.eye(3)[groups] + rng.normal(0, 0.05, (90, 3))
    labels, emb = routing.cluster(vecs, 3)
    assert routing.adjusted_rand(labels, groups) == pytest.approx(1.0) and emb.shape == (90, 2)
    tab = routing.crosstab(labels, np.where(groups == 0, "winter", "summer"))
    assert sum(sum(d.values()) for d in tab.values()) == 90
    with pytest.raises(InputError, match="no MoE layer"):
        routing.routing_vectors({"routing": {}}, 4)


@pytest.fixture(scope="module")
def run(tiny_work, tmp_path_factory):
    from ppeye.engine import Trainer

    root = tmp_path_factory.mktemp("explain")
    overrides = TINY + PIPE + tiny_work + SMALL_MODEL + [f"output_dir={root}", "run_name=r", "train.epochs=1",
                                                         "retrieval.enabled=false"]
    Trainer(ppeye.load_config(DEMO, overrides), callbacks=[]).train()
    return root, overrides


def test_visualize_writes_every_figure_array_and_a_scored_summary(run, tmp_path):
    from ppeye.explain import Explainer

    root, overrides = run
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r"])
    s = Explainer(cfg).run(out_dir=str(tmp_path), split="test")
    for f in ("gradcam_spatial.png", "gradcam_hours.png", "gradcam_variables.png", "gradcam.npz", "attention_days.png",
              "attention_people.png", "attention.npz", "afno_gain.png", "afno_modes.csv", "moe_clusters.png",
              "moe_crosstabs.csv", "moe.npz", "summary.json", "summary.txt"):
        assert (tmp_path / f).exists(), f
    assert s["ground_truth"] and s["people"] > 0
    g = s["gradcam"]
    assert np.isfinite(g["cataract_energy_ratio_group"]) and 0 <= g["cataract_pointing_game"] <= 1
    # configs/demo.yaml's explain section (bench/bench_cam.py: the settings that localise a known read-out)
    assert (g["layer"], g["method"], g["day_weighting"]) == ("input", "hirescam", "gradient")
    assert len(g["map_shape"]) == 3 and g["event_variable"] in g["variables"]
    assert all(sum(g[f"{d}_variable_share"]) == pytest.approx(1, abs=1e-3) for d in ("glaucoma", "cataract", "amd", "dr"))
    assert np.isfinite(g["cataract_event_variable_energy_ratio_group"])
    assert np.isfinite(s["attention"]["window_ratio_all_people"])
    assert 1 <= s["afno"]["block0_rank_of_planted_period_gain"] <= s["afno"]["modes"] - 1
    assert -1 <= s["moe"]["ari_vs_planted_subgroups"] <= 1 and s["moe"]["ari_people"] == s["people"]
    share = s["moe"]["assignment_share"]
    assert set(share) == set(s["moe"]["layers"]) and all(sum(v) == pytest.approx(1, abs=1e-3) for v in share.values())
    heads = np.load(tmp_path / "attention.npz")["head_maps"]
    assert heads.ndim == 4 and np.allclose(heads.sum(-1), 1, atol=1e-4)      # rows of softmax weights
    npz = np.load(tmp_path / "gradcam.npz")
    assert npz["spatial"].shape[0] == s["people"] and (npz["spatial"] >= 0).all()
    assert npz["by_variable"].shape[:3] == (s["people"], 4, len(g["variables"]))
    text = (tmp_path / "summary.txt").read_text()
    assert "ari_vs_planted_subgroups" in text and "eid" not in text
    assert json.load(open(tmp_path / "summary.json"))["people"] == s["people"]


def test_bad_requests_say_what_is_valid(run, tmp_path):
    from ppeye.engine.checkpoint import CheckpointError
    from ppeye.explain import Explainer

    root, overrides = run
    cfg = ppeye.load_config(DEMO, overrides + [f"weights={root}/r"])
    ex = Explainer(cfg)
    with pytest.raises(InputError, match=r"'backbone.nope' does not exist .* valid layers: backbone.blocks.0"):
        ex.run(["gradcam"], str(tmp_path), layer="backbone.nope")
    plain = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "model.moe.enabled=false"])
    with pytest.raises((InputError, CheckpointError)):
        Explainer(plain)
    with pytest.raises(InputError, match="unknown; choose from gradcam,attention,afno,moe"):
        ex.run(["spectra"], str(tmp_path))
    assert ex.cam_settings() == {"layer": "input", "method": "hirescam", "day_weighting": "gradient"}
    assert ex.cam_settings("backbone.blocks.1", "gradcam", "attention") == {
        "layer": "backbone.blocks.1", "method": "gradcam", "day_weighting": "attention"}
    with pytest.raises(InputError, match="method 'grad' is unknown"):
        ex.run(["gradcam"], str(tmp_path), method="grad")
    wider = ppeye.load_config(DEMO, overrides + [f"weights={root}/r", "model.width=32"])
    with pytest.raises(CheckpointError, match="does not fit this model"):
        Explainer(wider)
    assert not os.listdir(tmp_path)


def test_moe_analysis_of_a_model_without_moe_says_so(tiny_work, tmp_path):
    from ppeye.explain import Explainer

    cfg = ppeye.load_config(DEMO, TINY + PIPE + tiny_work + SMALL_MODEL + ["model.moe.enabled=false"])
    ex = Explainer(cfg, model=ppeye.build_model(cfg))
    with pytest.raises(InputError, match="no MoE layer"):
        ex.run(["moe"], str(tmp_path))
