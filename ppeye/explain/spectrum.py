"""AFNO frequency analysis.

AFNO mixes the days in the Fourier domain: mode m of the T-day window has period T / m days.
From the spectra the model returns (mean |.| over channels, per block) we report, per mode:

- ``energy_in`` / ``energy_out``: the spectrum entering the filter and what is kept after the
  complex MLP, soft-shrinkage and hard thresholding;
- ``gain``: energy_out / energy_in, the learned filter's effective magnitude per mode (the
  MLP weights are shared across modes, so per-mode differences come from the data and the
  shrinkage: a mode the filter suppresses has a small gain);
- ``dominant_periods``: modes ranked by mean kept energy among a group's people (cases of a
  disease), and by the case/control ratio of kept energy (where cases differ).
The mean mode (m = 0, no period) is left out of the rankings.
"""
import numpy as np


def periods(T):
    m = np.arange(T // 2 + 1)
    with np.errstate(divide="ignore"):
        return np.where(m > 0, T / np.maximum(m, 1), np.inf)


def block_spectra(explain):
    """List per AFNO block of (in [B, M], out [B, M]) numpy arrays."""
    return [(s["in"].numpy(), s["out"].numpy()) for s in explain.get("afno_spectrum", [])]


def summarise(spectra_in, spectra_out, T, cases=None):
    """Per mode: period, energy in/out, gain; with ``cases`` (bool [N]) the case/control ratio."""
    e_in, e_out = np.asarray(spectra_in, np.float64), np.asarray(spectra_out, np.float64)
    rows = {"mode": np.arange(e_in.shape[1]), "period_days": periods(T), "energy_in": e_in.mean(0),
            "energy_out": e_out.mean(0), "gain": e_out.mean(0) / np.maximum(e_in.mean(0), 1e-12)}
    if cases is not None and cases.any() and (~cases).any():
        rows["energy_out_cases"] = e_out[cases].mean(0)
        rows["case_control_ratio"] = e_out[cases].mean(0) / np.maximum(e_out[~cases].mean(0), 1e-12)
    return rows


def ranked_periods(values, T, top=None):
    """Periods (days) of the modes m >= 1 sorted by ``values`` (descending)."""
    order = np.argsort(-np.asarray(values)[1:], kind="stable") + 1
    p = periods(T)[order]
    return p if top is None else p[:top]


def rank_of_period(values, T, period):
    """1-based rank of the mode nearest ``period`` days among modes m >= 1 by ``values``."""
    m = int(round(T / period))
    order = np.argsort(-np.asarray(values)[1:], kind="stable") + 1
    return int(np.nonzero(order == m)[0][0]) + 1
