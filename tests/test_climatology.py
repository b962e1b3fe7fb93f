"""data.anomalies: each site's climatology (mean + annual harmonics per cell) fitted on the
fitting days only, saved with its checksum, subtracted on every read, carried by the export."""
import json
import os
import types

import numpy as np
import pytest

import ppeye
from conftest import DEMO, PIPE, TINY
from ppeye.core.errors import ConfigError, DataError
from ppeye.data.climatology import Climatology, climatology_for, fit, fit_dates, harmonic_basis, open_store
from ppeye.data.dataset import OnsetDataset
from ppeye.deploy.infer import _open_store
from ppeye.engine.features import encoder_identity


class FakeStore:
    """Two sites, two years of [1, 2, 2, 2] volumes: a planted annual cycle plus noise."""

    def __init__(self, days=730, noise=0.1, seed=0):
        rng = np.random.default_rng(seed)
        self.path, self.sites, self.shape = "fake.zarr", [11001, 11002], (1, 2, 2, 2)
        self.dates = np.datetime64("2019-01-01") + np.arange(days)
        self.valid = np.ones((2, days), bool)
        self.valid[1, 100:110] = False                          # a gap: skipped by the fit
        doy = (self.dates - self.dates.astype("datetime64[Y]").astype("datetime64[D]")).astype(int)
        self.truth = rng.normal(size=(2, 5) + self.shape)      # mean and two harmonics per cell
        basis = harmonic_basis(doy, 2)
        self.values = np.einsum("tp,sp...->st...", basis, self.truth) + rng.normal(0, noise, (2, days) + self.shape)

    def read_normalised(self, site, days):
        return self.values[site, np.asarray(days)].astype(np.float32)


def test_the_fit_recovers_a_planted_annual_cycle_from_the_fitting_days_only():
    store = FakeStore()
    coef = fit(store, np.datetime64("2019-01-01"), np.datetime64("2019-12-31"), 2, chunk_days=50)
    assert coef.shape == (2, 5, 1, 2, 2, 2)
    np.testing.assert_allclose(coef, store.truth, atol=0.03)
    clim = Climatology(coef, store.sites, 2, {"test": 1})
    # the second year was not fitted on, and its anomalies are the noise alone
    days = np.arange(365, 730)
    anomaly = store.values[0, days] - clim.at(11001, store.dates[days])
    assert abs(anomaly.mean()) < 0.02 and 0.08 < anomaly.std() < 0.12
    with pytest.raises(DataError, match="site 11003 has no climatology"):
        clim.at(11003, store.dates[:3])


def test_too_few_fitting_days_are_refused_naming_the_site():
    store = FakeStore(days=200)
    with pytest.raises(DataError, match="site 11001 has 200 valid days .* needs at least 300"):
        fit(store, np.datetime64("2019-01-01"), np.datetime64("2019-12-31"), 3)
    assert fit(store, np.datetime64("2019-01-01"), np.datetime64("2019-12-31"), 0).shape == (2, 1, 1, 2, 2, 2)


def test_a_saved_climatology_is_checked_before_it_is_read(tmp_path):
    store = FakeStore()
    clim = Climatology(fit(store, store.dates[0], store.dates[-1], 1), store.sites, 1, {"a": 1})
    path = str(tmp_path / "c.npz")
    clim.save(path)
    back = Climatology.load(path)
    np.testing.assert_array_equal(back.coefficients, clim.coefficients)
    assert back.sites == clim.sites and back.digest == clim.digest
    with open(path, "r+b") as f:           # one changed byte
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(DataError, match="SHA-256 differs"):
        Climatology.load(path)


def test_fitting_days_end_before_the_held_out_period_and_settings_are_checked():
    cfg = ppeye.load_config(DEMO)
    assert fit_dates(cfg) == (np.datetime64("2019-01-01"), np.datetime64("2019-12-31"))
    cfg = ppeye.load_config(DEMO, ["data.norm_period=[2019-01-01, 2021-06-30]"])
    assert fit_dates(cfg)[1] == np.datetime64("2020-12-31")              # ukb.temporal_split 2021-01-01
    with pytest.raises(ConfigError, match="data.anomalies.harmonics must be an integer from 0 to 6, got 9"):
        climatology_for(ppeye.load_config(DEMO, ["data.anomalies.enabled=true", "data.anomalies.harmonics=9"]), None)


def test_the_dataset_reads_anomalies_and_the_cache_identity_changes(tiny_work):
    plain = ppeye.load_config(DEMO, TINY + PIPE + tiny_work)
    cfg = ppeye.load_config(DEMO, TINY + PIPE + tiny_work + ["data.anomalies.enabled=true",
                                                             "data.anomalies.harmonics=0"])
    store = open_store(cfg)
    folder = os.path.join(cfg["data"]["work_dir"], "climatology")
    assert len([f for f in os.listdir(folder) if f.endswith(".npz")]) >= 1
    first, last = fit_dates(cfg)
    inside = np.nonzero((store.dates >= first) & (store.dates <= last) & store.valid[0])[0]
    # harmonics 0: the climatology is each cell's mean over the fitting days, so their anomalies average 0
    assert np.abs(store.read(0, inside).mean(axis=0)).max() < 1e-4
    np.testing.assert_allclose(store.read(0, inside[:5]),
                               store.read_normalised(0, inside[:5]) - store.climatology.at(store.sites[0],
                                                                                          store.dates[inside[:5]]),
                               atol=1e-6)
    again = open_store(cfg)                                   # read back, not fitted again
    assert again.climatology.digest == store.climatology.digest
    ds = OnsetDataset(cfg, "train")
    assert ds.store.climatology is not None and OnsetDataset(plain, "train").store.climatology is None
    model = ppeye.build_model(cfg)
    assert (encoder_identity(cfg, model, store)["store_normalisation"]
            != encoder_identity(plain, model, open_store(plain))["store_normalisation"])


def test_inference_reads_the_exported_climatology(tiny_work, tmp_path):
    cfg = ppeye.load_config(DEMO, TINY + PIPE + tiny_work + ["data.anomalies.enabled=true",
                                                             "data.anomalies.harmonics=0"])
    store = open_store(cfg)
    store.climatology.save(str(tmp_path / "climatology.npz"))
    info = {"weather": {"mean": store.mean.ravel().tolist(), "std": store.std.ravel().tolist(),
                        "variables": store.variables, "shape": list(store.shape), "climatology": "climatology.npz",
                        "store_identity": store.identity}}
    model = types.SimpleNamespace(info=info, dir=str(tmp_path))
    got = _open_store(model, store.path, None)
    days = np.arange(40, 48)
    np.testing.assert_array_equal(got.read(1, days), store.read(1, days))
    assert json.load(open(tmp_path / "climatology.npz.json"))["sites"] == store.sites
