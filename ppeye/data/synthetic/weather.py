"""Synthetic ERA5-Land-like hourly weather, written as the CDS delivers it.

The field of each variable is, per grid cell, day ``d`` and hour ``h``::

    climatology(cell, season(d), diurnal(h))      mean, elevation, seasonal and daily cycles
  + synoptic noise(d, h, cell)                    AR(1) over days, smooth in space,
                                                  shared within a variable group
  + planted events       (the ``event`` variable)    localized blobs: the weather signal
  + planted oscillation  (the ``periodic`` variable) a fixed-period wave whose amplitude
                                                     drifts slowly, differently per site

Accumulated variables are generated as hourly amounts (non-negative or
non-positive by their sign), then accumulated since 00 UTC the ERA5-Land way:
the value at hour ``h`` of day ``d`` (h = 1..23) is the sum of the amounts of
the hours ending 01..h of day ``d``; the 00 UTC value of day ``d`` is the total
of day ``d - 1``. Sea cells are NaN. Files: ``era5/<YYYY>/<MM>/<group>.zip``
holding ``data_stream-oper_stepType-instant.nc`` and/or
``...-accum.nc`` (a group with one step type is written as ``<group>.nc``).

The generator also returns, per site and day, the planted exposures from which
the ground truth is computed (see :mod:`ppeye.data.synthetic.signals`).
"""
import calendar

import numpy as np
import pandas as pd

from ..era5.grid import col_lon, row_lat, site_box, union_box

KM_PER_DEG_LAT = 110.57
SEASON_PEAK_DOY = 200  # warmest around 19 July
DIURNAL_PEAK_HOUR = 14.0  # UTC, close to local time in the UK
AR_DAILY = 0.75  # day-to-day persistence of synoptic weather
N_MODES = 6  # smooth spatial patterns the synoptic noise is made of


class SiteGeometry:
    """Where each site's box and planted region sit on the raw grid."""

    def __init__(self, centres, box_size, resolution, margin, region_frac):
        self.centres = centres
        self.boxes = [site_box(c.lat, c.lon, box_size, resolution) for c in centres]
        self.grid = union_box(self.boxes, margin)
        self.lats = row_lat(self.grid.rows, resolution)
        self.lons = col_lon(self.grid.cols, resolution)
        h, w = box_size
        y0, y1, x0, x1 = region_frac
        # region in box cells: rows [ry0, ry1), columns [rx0, rx1)
        self.region = (int(np.floor(y0 * h)), max(int(np.ceil(y1 * h)), int(np.floor(y0 * h)) + 1),
                       int(np.floor(x0 * w)), max(int(np.ceil(x1 * w)), int(np.floor(x0 * w)) + 1))
        self.box_offsets = [(b.row0 - self.grid.row0, b.col0 - self.grid.col0) for b in self.boxes]
        self.site_cells = [
            (b.row0 + (h - 1) // 2 - self.grid.row0, b.col0 + (w - 1) // 2 - self.grid.col0) for b in self.boxes
        ]

    def region_slices(self, site):
        oy, ox = self.box_offsets[site]
        ry0, ry1, rx0, rx1 = self.region
        return slice(oy + ry0, oy + ry1), slice(ox + rx0, ox + rx1)

    def km_coords(self):
        lat_c = float(self.lats.mean())
        lon_c = float(self.lons.mean())
        y = (self.lats[:, None] - lat_c) * KM_PER_DEG_LAT
        x = (self.lons[None, :] - lon_c) * KM_PER_DEG_LAT * np.cos(np.radians(lat_c))
        return np.broadcast_to(y, (len(self.lats), len(self.lons))), np.broadcast_to(x, (len(self.lats), len(self.lons)))


def land_mask(geometry, coastal_centres):
    """True on land. Coastal centres get a straight shore ``distance`` km towards ``bearing``.

    The sea reaches at most 150 km from its centre, and the 3 x 3 cells around
    every site stay land so that no site sits in the sea.
    """
    ny, nx = len(geometry.lats), len(geometry.lons)
    lat = np.broadcast_to(geometry.lats[:, None], (ny, nx))
    lon = np.broadcast_to(geometry.lons[None, :], (ny, nx))
    land = np.ones((ny, nx), dtype=bool)
    for c in coastal_centres:
        bearing, distance = c.sea
        dy = (lat - c.lat) * KM_PER_DEG_LAT
        dx = (lon - c.lon) * KM_PER_DEG_LAT * np.cos(np.radians(c.lat))
        along = dx * np.sin(np.radians(bearing)) + dy * np.cos(np.radians(bearing))
        land &= ~((along > distance) & (np.hypot(dx, dy) < 150.0))
    for (i, j) in geometry.site_cells:
        land[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2] = True
    return land


class WeatherGenerator:
    """Generates month after month of hourly fields for ``variables`` on the raw grid."""

    def __init__(self, variables, geometry, land, start, end, signals, seed):
        self.variables = variables
        self.geo = geometry
        self.land = land
        self.start = pd.Timestamp(start)
        self.end = pd.Timestamp(end)
        self.signals = signals
        self.seed = seed
        # day 0 is the day before start: its total is the 00 UTC value of ``start``
        self.days = pd.date_range(self.start - pd.Timedelta(days=1), self.end, freq="D")
        n_days = len(self.days)
        ny, nx = len(geometry.lats), len(geometry.lons)
        rng = np.random.default_rng([seed, 1])
        self.elevation = self._elevation(rng) * land
        self.modes = self._spatial_modes(rng)  # [M, ny, nx]
        names = sorted({v.group for v in variables}) + [v.short for v in variables] + ["cloud"]
        # synoptic coefficients: one AR(1) series per (noise source, mode)
        self.series = {name: self._ar_series(np.random.default_rng([seed, 2, i]), n_days + 1, N_MODES, AR_DAILY)
                       for i, name in enumerate(names)}
        self.n_sites = len(geometry.centres)
        ev = signals["event"]
        self.event_var = ev["variable"]
        per = signals["periodic"]
        self.periodic_var = per["variable"]
        # slowly drifting amplitude of the planted oscillation, per site (~monthly changes),
        # bounded in (0, 2) with mean about 1
        env_rng = np.random.default_rng([seed, 3])
        drift = self._deseasonalise(self._ar_series(env_rng, n_days, self.n_sites, 0.97), self.days)
        self.envelope = 2.0 / (1.0 + np.exp(-1.5 * drift))  # [days, sites]
        self.site_weights = self._site_weights(ny, nx)  # [sites, ny, nx]
        self.event_exposure = np.zeros((n_days, self.n_sites), dtype=np.float64)
        self.ny, self.nx = ny, nx
        self._carry = {}  # last day's hourly amounts of each accumulated variable

    # ------------------------------------------------------------------ static pieces

    def _elevation(self, rng):
        y, x = self.geo.km_coords()
        z = np.zeros_like(y)
        for _ in range(8):
            cy = rng.uniform(y.min(), y.max())
            cx = rng.uniform(x.min(), x.max())
            width = rng.uniform(15, 60)
            z += rng.uniform(100, 500) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width**2))
        return z.astype(np.float32)

    def _spatial_modes(self, rng):
        y, x = self.geo.km_coords()
        modes = [np.ones_like(y)]
        for _ in range(N_MODES - 1):
            wavelength = rng.uniform(300, 1500)
            angle = rng.uniform(0, np.pi)
            k = 2 * np.pi / wavelength
            modes.append(np.sqrt(2) * np.cos(k * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 2 * np.pi)))
        weights = np.array([1.0] + [0.6] * (N_MODES - 1))
        weights /= np.sqrt((weights**2).sum())
        return (np.stack(modes) * weights[:, None, None]).astype(np.float32)

    @staticmethod
    def _ar_series(rng, n, k, phi):
        out = np.empty((n, k))
        out[0] = rng.standard_normal(k)
        eps = rng.standard_normal((n, k)) * np.sqrt(1 - phi**2)
        for t in range(1, n):
            out[t] = phi * out[t - 1] + eps[t]
        return out

    @staticmethod
    def _deseasonalise(series, days):
        """``series`` [days, k] minus its least-squares annual cycle (one sine and cosine of the day of year).

        A slow random drift over a year or two correlates with the season by chance (measured on
        the demo: up to -0.6 for the oscillation amplitude), and a model could then predict the
        planted exposure from the time of year alone; removing the fitted cycle makes the
        exposure orthogonal to the season in the generated period. A period shorter than a year
        is returned as it is: there the annual cycle is not identifiable (over a few months it is
        a trend, and removing it would flatten most of the drift).
        """
        if len(days) < 365:
            return series
        angle = 2 * np.pi * days.dayofyear.to_numpy() / 365.25
        basis = np.stack([np.sin(angle), np.cos(angle)], axis=1)
        coef, *_ = np.linalg.lstsq(basis - basis.mean(0), series - series.mean(0), rcond=None)
        return series - (basis - basis.mean(0)) @ coef

    def _site_weights(self, ny, nx):
        w = np.zeros((self.n_sites, ny, nx))
        ii, jj = np.mgrid[0:ny, 0:nx]
        for s, (i, j) in enumerate(self.geo.site_cells):
            w[s] = np.exp(-((ii - i) ** 2 + (jj - j) ** 2) / (2 * 4.0**2))
        total = w.sum(0)
        return (w / np.maximum(total, 1.0)).astype(np.float32)

    # ------------------------------------------------------------------ time pieces

    def _seasonal(self, days):
        doy = days.dayofyear.to_numpy()
        return np.cos(2 * np.pi * (doy - SEASON_PEAK_DOY) / 365.25)  # +1 mid-July, -1 mid-January

    def _synoptic(self, name, day_idx):
        """Noise source ``name`` for the month's days, [n, 24, ny, nx], unit variance.

        Daily values are interpolated linearly to the hours, so the weather changes
        smoothly through each day.
        """
        a = self.series[name]
        daily = np.einsum("dm,myx->dyx", a[day_idx[0] : day_idx[-1] + 2], self.modes)  # n+1 days
        frac = (np.arange(24) / 24.0)[None, :, None, None]
        return (daily[:-1, None] * (1 - frac) + daily[1:, None] * frac).astype(np.float32)

    def _solar_shape(self, season, mid_hours):
        """Daylight weights per hour, summing to 1 per day ([n, 24]); longer days in summer."""
        half_width = 6.25 + 2.0 * season  # about 8.5 h of daylight in winter, 16.5 h in summer
        x = (mid_hours[None, :] - 12.0) / half_width[:, None]
        shape = np.clip(np.cos(np.pi / 2 * x), 0, None) ** 1.5
        return shape / shape.sum(1, keepdims=True)

    # ------------------------------------------------------------------ one month

    def month(self, year, month):
        """Fields of one calendar month: ``(days, {short: array [n_days, 24, ny, nx]})`` as in the files.

        Months must be generated in calendar order: the 00 UTC value of an
        accumulated variable continues the previous day's accumulation, which is
        carried over from the previous month.
        """
        first = pd.Timestamp(year, month, 1)
        days = pd.date_range(first, periods=calendar.monthrange(year, month)[1], freq="D")
        days = days[(days >= self.start) & (days <= self.end)]
        day_idx = np.array([self.days.get_loc(d) for d in days])
        rng = np.random.default_rng([self.seed, 4, year, month])
        season = self._seasonal(days)
        cloud = self._cloud(day_idx)
        events = self._events(rng, days, day_idx)
        oscillation = self._oscillation(day_idx)
        group_noise = {}
        fields = {}
        for var in self.variables:
            if var.accumulated:
                amounts = self._hourly_amounts(var, season, day_idx, rng, cloud, events, oscillation)
                fields[var.short] = self._accumulate(var, amounts, day_idx, rng)
            else:
                if var.group not in group_noise:
                    group_noise[var.group] = self._synoptic(var.group, day_idx)
                noise = 0.8 * group_noise[var.group] + 0.6 * self._synoptic(var.short, day_idx)
                noise += 0.15 * rng.standard_normal((len(days), 24, 1, 1)).astype(np.float32)
                fields[var.short] = self._instant(var, season, noise, cloud, events, oscillation)
        if "d2m" in fields and "t2m" in fields:  # air cannot be wetter than saturated
            np.minimum(fields["d2m"], fields["t2m"], out=fields["d2m"])
        for f in fields.values():
            f[:, :, ~self.land] = np.nan
        return days, fields

    def _cloud(self, day_idx):
        return 1 / (1 + np.exp(-(1.3 * self._synoptic("cloud", day_idx) + 0.2)))  # (0, 1)

    def _instant(self, var, season, noise, cloud, events, oscillation):
        mean, seas_amp, diur_amp, sd, lo, hi = var.synth
        diurnal = np.cos(2 * np.pi * (np.arange(24) - DIURNAL_PEAK_HOUR) / 24)[None, :, None, None]
        value = mean + seas_amp * season[:, None, None, None] + diur_amp * diurnal * (1 - 0.5 * cloud)
        value = value + sd * noise
        if var.units == "K":
            value = value - 0.0065 * self.elevation  # lapse rate
        if var.short == "sp":
            value = mean * np.exp(-self.elevation / 8400.0) + sd * noise
        if var.short == self.event_var:
            value = value + self.signals["event"]["amplitude"] * sd * events
        if var.short == self.periodic_var:
            value = value + self.signals["periodic"]["amplitude"] * sd * oscillation
        return np.clip(value, lo, hi).astype(np.float32)

    def _hourly_amounts(self, var, season, day_idx, rng, cloud, events=None, oscillation=None):
        """Hourly amounts [n, 24, ny, nx] of the hours ending 01..24, signed by ``var.sign``."""
        mean_total, seas_amp, shape, wet_driven = var.synth
        magnitude = abs(mean_total)
        n = len(day_idx)
        daily_scale = np.clip(1 + seas_amp * season, 0.05, None)[:, None, None, None]
        if wet_driven:
            # rain falls in bursts when it is cloudy; more on high ground
            bursts = np.exp(0.9 * rng.standard_normal((n, 24, 1, 1)))
            intensity = np.clip(cloud - 0.45, 0, None) ** 1.5 * bursts * (1 + self.elevation / 1000.0)
            amounts = intensity / max(float(intensity.mean()), 1e-12) * (magnitude / 24.0) * daily_scale
            if var.short == "sf":  # snow only in the cold season
                amounts = amounts * 4 * np.clip(-season, 0, 1)[:, None, None, None] ** 2
        else:
            if shape == "solar":
                weights = self._solar_shape(season, np.arange(24) + 0.5)[:, :, None, None]
            else:
                weights = np.full((n, 24, 1, 1), 1 / 24.0)
            sunny = var.group == "radiation" and var.short not in ("strd", "str")
            sky = (1 - 0.6 * cloud) if sunny else (0.8 + 0.4 * cloud)
            amounts = magnitude * daily_scale * weights * sky
        if events is not None and var.short == self.event_var:
            extra = self.signals["event"]["amplitude"] * 3.0 * magnitude / 24.0 * events
            if shape == "solar":  # no sunshine at night, however strong the event
                extra = extra * (self._solar_shape(season, np.arange(24) + 0.5) > 0)[:, :, None, None]
            amounts = amounts + extra
        if oscillation is not None and var.short == self.periodic_var:
            amounts = amounts * np.clip(1 + 0.3 * self.signals["periodic"]["amplitude"] * oscillation, 0.05, None)
        sign = var.sign if var.sign != 0 else np.sign(mean_total)
        return (sign * np.clip(amounts, 0, None)).astype(np.float32)

    def _accumulate(self, var, amounts, day_idx, rng):
        """ERA5-Land accumulation: hour h (1..23) holds the sum since 00 UTC; 00 UTC the previous day's total."""
        previous = self._carry.get(var.short)
        if previous is None:  # the day before ``start``: only its total is ever written
            prev_idx = day_idx[:1] - 1
            season = self._seasonal(self.days[prev_idx])
            previous = self._hourly_amounts(var, season, prev_idx, rng, self._cloud(prev_idx))[0]
        self._carry[var.short] = amounts[-1]
        acc = np.cumsum(amounts, axis=1, dtype=np.float64)
        out = np.empty(amounts.shape, dtype=np.float32)
        out[0, 0] = previous.sum(0, dtype=np.float64)
        out[1:, 0] = acc[:-1, 23]
        out[:, 1:] = acc[:, :23]
        return out

    def _oscillation(self, day_idx):
        period = self.signals["periodic"]["period_days"]
        days_abs = day_idx[:, None] + np.arange(24)[None, :] / 24.0
        wave = np.sin(2 * np.pi * days_abs[:, :, None, None] / period)
        env = np.einsum("ds,syx->dyx", self.envelope[day_idx], self.site_weights)  # [n, ny, nx]
        return (wave * env[:, None]).astype(np.float32)

    def _events(self, rng, days, day_idx):
        """Planted event blobs of the month, [n, 24, ny, nx], in units of the event amplitude.

        Each site has Poisson(``daily_rate``) events a day; an event sits inside the
        site's planted region with probability ``inside_share`` and anywhere else in
        its box otherwise (a decoy). Exposure per site and day (the sum of the blob
        mass falling inside that site's region) is recorded for the ground truth.
        """
        ev = self.signals["event"]
        field = np.zeros((len(days), 24, self.ny, self.nx), dtype=np.float32)
        h, w = self.geo.boxes[0].height, self.geo.boxes[0].width
        ry0, ry1, rx0, rx1 = self.geo.region
        sigma = max(1.0, 0.075 * min(h, w))
        ii, jj = np.mgrid[0 : self.ny, 0 : self.nx]
        hours = np.arange(24)
        for s in range(self.n_sites):
            oy, ox = self.geo.box_offsets[s]
            counts = rng.poisson(ev["daily_rate"], len(days))
            for d in np.nonzero(counts)[0]:
                for _ in range(counts[d]):
                    if rng.random() < ev["inside_share"]:
                        cy, cx = rng.uniform(ry0, ry1 - 1e-9), rng.uniform(rx0, rx1 - 1e-9)
                    else:
                        while True:  # a decoy: anywhere in the box but the region
                            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                            if not (ry0 <= cy < ry1 and rx0 <= cx < rx1):
                                break
                    blob = np.exp(-((ii - (oy + cy - 0.5)) ** 2 + (jj - (ox + cx - 0.5)) ** 2) / (2 * sigma**2))
                    peak = rng.uniform(11, 15)
                    hour_w = np.exp(-((hours - peak) ** 2) / (2 * 1.5**2))
                    hour_w[np.abs(hours - peak) > 4] = 0.0  # an afternoon event, nothing at night
                    hour_w /= hour_w.sum()
                    strength = rng.uniform(0.7, 1.3)
                    field[d] += (strength * hour_w[:, None, None] * blob[None]).astype(np.float32)
        land = self.land.astype(np.float32)
        daily = (field * land).sum(1)  # [n, ny, nx]
        for s in range(self.n_sites):
            ys, xs = self.geo.region_slices(s)
            self.event_exposure[day_idx, s] = daily[:, ys, xs].sum((1, 2))
        return field

    # ------------------------------------------------------------------ writing

    def site_envelope(self):
        """The oscillation amplitude at each site's own cell, [days, sites]."""
        cells = self.geo.site_cells
        w = np.stack([self.site_weights[:, i, j] for (i, j) in cells], axis=1)  # [sites_src, sites]
        return self.envelope @ w
