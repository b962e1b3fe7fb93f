#!/usr/bin/env python
"""Data made without ppeye's generator, for checking that ppeye learns a weather effect it was
never tuned on (issue 23: "a run on data the project has never seen, with a seed nobody tuned").

Nothing here imports ``ppeye.data.synthetic``; the weather, the people and the effect are made
by other rules than the demo's, and written in the layouts a user brings: hourly ERA5-Land-style
NetCDF files in ``<out>/era5/<YYYY>/<MM>/instant.nc`` (``valid_time``, descending ``latitude``,
units as the CDS writes them) and a UK Biobank-style CSV (``<out>/ukb.csv``, ukbconv columns).

Weather: five centres in southern England and the Midlands on one 0.1 degree grid, four
instantaneous variables (t2m, d2m, sp, u10). Each variable is a seasonal cycle, a diurnal cycle
(temperatures), and day-to-day anomalies from an AR(1) process over a few large-scale spatial
modes that drift across the grid (weather systems), plus cell noise.

People: assessment 2006-2010 at one of the centres, ten features (sex, age, BMI, blood pressure,
HbA1c, smoking, IOP, Townsend index, glasses, outdoors in summer). Each disease's yearly onset
risk depends on the features; **only AMD also depends on the weather**: its log-odds rise with
the number of "hot and humid" days (box-mean t2m and d2m anomalies both above their 70th
percentiles, the anomalies being the generator's own) among the 10-30 days before the onset date.
``truth.json`` records the effect and the people's exposure, for the report.

    python bench/independent_data.py --out output/independent/raw --seed 20261201
"""
import argparse
import json
import os

import numpy as np
import pandas as pd

CENTRES = {"Oxford": (11002, 51.752, -1.258), "Reading": (11007, 51.454, -0.978),
           "Hounslow": (11018, 51.475, -0.368), "Bristol": (11011, 51.455, -2.588),
           "Birmingham": (11021, 52.486, -1.890)}
LAT = np.round(np.arange(53.2, 50.59, -0.1), 2)          # descending, as ERA5
LON = np.round(np.arange(-3.4, 0.61, 0.1), 2)
VARS = {  # short: (units, annual mean, seasonal amplitude, diurnal amplitude, anomaly sd, cell noise)
    "t2m": ("K", 283.0, 6.5, 4.0, 2.8, 0.3),
    "d2m": ("K", 279.0, 5.0, 1.0, 2.2, 0.3),
    "sp": ("Pa", 101200.0, 150.0, 0.0, 900.0, 20.0),
    "u10": ("m s**-1", 2.0, 0.8, 0.5, 2.5, 0.4),
}
START, END = "2019-01-01", "2020-12-31"
EXPOSURE_LAGS = (10, 30)            # days before the onset date
AMD_EFFECT = 0.22                   # log-odds per hot-and-humid day in the lag window


def weather(rng):
    """{short: [days, 24, lat, lon] float32}, the daily box-free anomaly series and the dates."""
    dates = pd.date_range(START, END, freq="D")
    n, ny, nx = len(dates), len(LAT), len(LON)
    doy = dates.dayofyear.to_numpy()
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    modes = 5
    # drifting modes: each a plane wave with its own direction, wavelength and drift speed
    angle = rng.uniform(0, 2 * np.pi, modes)
    wavelength = rng.uniform(0.8, 2.5, modes)
    speed = rng.uniform(0.05, 0.25, modes)
    out, anomalies = {}, {}
    hours = np.arange(24)
    for v, (units, mean, seas, diurnal, sd, noise) in VARS.items():
        phi = 0.8 if v != "sp" else 0.9
        amp = np.zeros((n, modes))
        for t in range(1, n):
            amp[t] = phi * amp[t - 1] + rng.normal(0, np.sqrt(1 - phi ** 2), modes)
        amp[0] = rng.normal(0, 1, modes)
        field = np.zeros((n, ny, nx), np.float32)
        for m in range(modes):
            proj = np.cos(angle[m]) * xx + np.sin(angle[m]) * yy
            phase = 2 * np.pi * (proj / wavelength[m] - speed[m] * np.arange(n)[:, None, None])
            field += (amp[:, m, None, None] * np.cos(phase) / np.sqrt(modes)).astype(np.float32)
        field *= sd
        seasonal = mean - seas * np.cos(2 * np.pi * (doy - 20) / 365.25)
        gradient = (0.8 * (1 - yy) if units == "K" else 0.0)                 # warmer to the south
        daily = seasonal[:, None, None] + field + gradient
        cycle = diurnal * np.cos(2 * np.pi * (hours - 15) / 24)             # warmest mid-afternoon
        values = daily[:, None] + cycle[None, :, None, None]
        values = values + rng.normal(0, noise, values.shape)
        if v == "d2m":                                                       # dew point <= temperature
            values = np.minimum(values, out["t2m"] - 0.1)
        out[v] = values.astype(np.float32)
        anomalies[v] = field
    return dates, out, anomalies


def write_weather(out_dir, dates, fields):
    import xarray as xr

    for (year, month), idx in pd.Series(np.arange(len(dates)), index=dates).groupby(
            [dates.year, dates.month]):
        days = idx.to_numpy()
        times = pd.DatetimeIndex([dates[d] + pd.Timedelta(hours=h) for d in days for h in range(24)])
        data = {v: (("valid_time", "latitude", "longitude"),
                    fields[v][days].reshape(-1, len(LAT), len(LON)), {"units": VARS[v][0]}) for v in VARS}
        ds = xr.Dataset(data, coords={"valid_time": times, "latitude": LAT, "longitude": LON,
                                      "number": 0, "expver": "0001"})
        folder = os.path.join(out_dir, "era5", f"{year:04d}", f"{month:02d}")
        os.makedirs(folder, exist_ok=True)
        ds.to_netcdf(os.path.join(folder, "instant.nc"))


def box_index(lat, lon, half=6):
    i = int(np.argmin(np.abs(LAT - lat)))
    j = int(np.argmin(np.abs(LON - lon)))
    return slice(i - half, i + half), slice(j - half, j + half)


def people(rng, dates, anomalies, n):
    names = list(CENTRES)
    centre = rng.choice(len(names), n, p=[0.22, 0.22, 0.22, 0.2, 0.14])
    sex = rng.integers(0, 2, n)
    born = rng.integers(1938, 1969, n)
    assess = pd.to_datetime("2006-03-01") + pd.to_timedelta(rng.integers(0, 4 * 365, n), unit="D")
    age = (assess.year - born).to_numpy()
    bmi = np.clip(rng.normal(27.4, 4.6, n), 15, 60)
    sbp = np.clip(rng.normal(138, 19, n) + 0.4 * (age - 56), 80, 230).round()
    hba1c = np.clip(rng.lognormal(np.log(35.5), 0.18, n) + 0.3 * (bmi - 27), 15, 130)
    smoke = rng.choice([0, 1, 2], n, p=[0.55, 0.35, 0.10])
    iop = np.clip(rng.normal(15.8, 3.4, n), 5, 45)
    townsend = rng.normal(-1.3, 3.0, n)
    glasses = (rng.random(n) < 0.6 + 0.005 * (age - 56)).astype(int)
    outdoors = rng.poisson(3.5, n)
    feats = {"31": sex, "21003": age, "21001": bmi.round(2), "4080": sbp, "30750": hba1c.round(1),
             "20116": smoke, "5262": iop.round(2), "189": townsend.round(2), "2207": glasses, "1050": outdoors}
    z = lambda x: (x - x.mean()) / x.std()                                             # noqa: E731
    base = {"glaucoma": -3.6 + 0.55 * z(iop) + 0.35 * z(age.astype(float)),
            "cataract": -3.0 + 0.6 * z(age.astype(float)) + 0.25 * (smoke == 2) + 0.2 * z(hba1c),
            "amd": -2.6 + 0.5 * z(age.astype(float)) + 0.4 * (smoke == 2),
            "dr": -3.9 + 0.9 * z(hba1c) + 0.3 * z(bmi)}
    # hot-and-humid days per centre and day (the generator's own anomalies, box means)
    hot = {}
    t_cut, d_cut = (np.quantile(anomalies[v].mean(axis=(1, 2)), 0.7) for v in ("t2m", "d2m"))
    for k, name in enumerate(names):
        _, lat, lon = CENTRES[name]
        si, sj = box_index(lat, lon)
        t = anomalies["t2m"][:, si, sj].mean(axis=(1, 2))
        d = anomalies["d2m"][:, si, sj].mean(axis=(1, 2))
        hot[k] = ((t > t_cut) & (d > d_cut)).astype(float)
    first = EXPOSURE_LAGS[1] + 70          # leave room for windows of up to 70 days before onsets
    candidate = rng.integers(first, len(dates), n)
    exposure = np.array([hot[c][d - EXPOSURE_LAGS[1]:d - EXPOSURE_LAGS[0] + 1].sum()
                         for c, d in zip(centre, candidate)])
    onset = {}
    for d, logit in base.items():
        if d == "amd":
            logit = logit + AMD_EFFECT * (exposure - exposure.mean())
        # about one candidate date per person in the two years: the risk of an onset on that date
        sick = rng.random(n) < 1 / (1 + np.exp(-logit))
        onset[d] = np.where(sick, candidate, -1)
    table = pd.DataFrame({"eid": rng.permutation(np.arange(1_000_001, 1_000_001 + n)),
                          "34-0.0": born, "52-0.0": rng.integers(1, 13, n),
                          "53-0.0": assess.strftime("%Y-%m-%d"),
                          "54-0.0": [CENTRES[names[c]][0] for c in centre]})
    for f, v in feats.items():
        col = v.astype(float)
        missing = rng.random(n) < (0.08 if f in ("30750", "5262") else 0.02)
        table[f"{f}-0.0"] = np.where(missing, np.nan, col)
    fo = {"glaucoma": "131186-0.0", "cataract": "131164-0.0", "amd": "131182-0.0", "dr": "131184-0.0"}
    for d, col in fo.items():
        table[col] = [dates[i].strftime("%Y-%m-%d") if i >= 0 else "" for i in onset[d]]
    table["40000-0.0"] = ""
    truth = {"effect": {"disease": "amd", "exposure": "hot-and-humid days (box-mean t2m and d2m anomalies above "
                                                      "their 70th percentiles)", "lags_days": list(EXPOSURE_LAGS),
                        "log_odds_per_day": AMD_EFFECT},
             "exposure_mean": float(exposure.mean()), "exposure_sd": float(exposure.std()),
             "cases": {d: int((onset[d] >= 0).sum()) for d in onset}}
    return table, truth


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--people", type=int, default=6000)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    dates, fields, anomalies = weather(rng)
    os.makedirs(args.out, exist_ok=True)
    write_weather(args.out, dates, fields)
    table, truth = people(rng, dates, anomalies, args.people)
    table.to_csv(os.path.join(args.out, "ukb.csv"), index=False)
    truth["seed"] = args.seed
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    print(json.dumps(truth, indent=1))


if __name__ == "__main__":
    main()
