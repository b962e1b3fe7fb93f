"""British National Grid (OSGB36) eastings/northings -> latitude/longitude.

UK Biobank home locations (fields 20074 east, 20075 north) are National Grid
coordinates rounded to 1 km. The inverse Transverse Mercator projection on the
Airy 1830 ellipsoid gives OSGB36 latitude/longitude; the further shift to WGS84
(about 100 m) is below that rounding and is not applied.
"""
import numpy as np

A, B = 6377563.396, 6356256.909  # Airy 1830 semi-axes (m)
F0 = 0.9996012717  # scale on the central meridian
LAT0, LON0 = np.radians(49.0), np.radians(-2.0)  # true origin
E0, N0 = 400000.0, -100000.0  # false origin (m)
E2 = 1 - (B * B) / (A * A)
N_ = (A - B) / (A + B)


def _meridional_arc(lat):
    n, n2, n3 = N_, N_**2, N_**3
    d, s = lat - LAT0, lat + LAT0
    return B * F0 * ((1 + n + 1.25 * n2 + 1.25 * n3) * d
                     - (3 * n + 3 * n2 + 21 / 8 * n3) * np.sin(d) * np.cos(s)
                     + (15 / 8 * n2 + 15 / 8 * n3) * np.sin(2 * d) * np.cos(2 * s)
                     - 35 / 24 * n3 * np.sin(3 * d) * np.cos(3 * s))


def osgb_to_latlon(easting, northing):
    """Arrays of eastings and northings (m) -> (latitude, longitude) in degrees; NaN stays NaN."""
    e = np.asarray(easting, dtype=np.float64)
    n = np.asarray(northing, dtype=np.float64)
    lat = (n - N0) / (A * F0) + LAT0
    for _ in range(20):  # converges to 0.01 mm in a few steps
        residual = n - N0 - _meridional_arc(lat)
        lat = lat + residual / (A * F0)
        if np.nanmax(np.abs(residual), initial=0.0) < 1e-5:
            break
    sin, cos, tan = np.sin(lat), np.cos(lat), np.tan(lat)
    nu = A * F0 / np.sqrt(1 - E2 * sin**2)
    rho = A * F0 * (1 - E2) / (1 - E2 * sin**2) ** 1.5
    eta2 = nu / rho - 1
    sec = 1 / cos
    t2, t4, t6 = tan**2, tan**4, tan**6
    vii = tan / (2 * rho * nu)
    viii = tan / (24 * rho * nu**3) * (5 + 3 * t2 + eta2 - 9 * t2 * eta2)
    ix = tan / (720 * rho * nu**5) * (61 + 90 * t2 + 45 * t4)
    x = sec / nu
    xi = sec / (6 * nu**3) * (nu / rho + 2 * t2)
    xii = sec / (120 * nu**5) * (5 + 28 * t2 + 24 * t4)
    xiia = sec / (5040 * nu**7) * (61 + 662 * t2 + 1320 * t4 + 720 * t6)
    de = e - E0
    lat_out = lat - vii * de**2 + viii * de**4 - ix * de**6
    lon_out = LON0 + x * de - xi * de**3 + xii * de**5 - xiia * de**7
    return np.degrees(lat_out), np.degrees(lon_out)
