"""Figures of the explanations (matplotlib, PNG written atomically)."""
import numpy as np

from ..metrics.plots import _figure, _save

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def box_extent(box, resolution):
    """imshow's extent [west, east, south, north] in degrees from the centre's cell (the box's
    cell ((H - 1) // 2, (W - 1) // 2), where the site is) for a map over a box of ``box`` (H, W)
    cells of ``resolution`` degrees (a layer's coarser map covers the same box).

    >>> [round(v, 2) for v in box_extent((16, 16), 0.1)]
    [-0.75, 0.85, -0.85, 0.75]
    """
    (H, W), res = box, float(resolution)
    sr, sc = (H - 1) // 2, (W - 1) // 2
    return [(-sc - 0.5) * res, (W - sc - 0.5) * res, (sr - H + 0.5) * res, (sr + 0.5) * res]


def spatial_maps(maps, titles, path, region=None, site=None, suptitle="", ncols=None, signed=False, extent=None,
                 cbar_label=None):
    """One panel per map [H, W] (box row 0 = north), the site cell and the region outlined (both
    in map cells); ``ncols`` panels a row (default: all in one row); ``signed``: a diverging scale
    centred on 0; ``extent`` (:func:`box_extent`): axes in degrees east and north of the centre
    instead of cells; ``cbar_label``: what the colour measures."""
    plt = _figure()
    ncols = ncols or len(maps)
    nrows = -(-len(maps) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.4 if nrows == 1 else 2.9 * nrows), squeeze=False)
    for ax in axes.ravel()[len(maps):]:
        ax.axis("off")
    for ax, m, t in zip(axes.ravel(), maps, titles):
        h, w = m.shape
        west, east, south, north = extent if extent is not None else (-0.5, w - 0.5, h - 0.5, -0.5)
        cw, ch = (east - west) / w, (north - south) / h

        def xy(r, c):                      # a map cell's lower-left corner in the axes' units
            return west + c * cw, north - (r + 1) * ch

        kw = dict(extent=[west, east, south, north] if extent is not None else None, origin="upper")
        if signed:
            top = float(np.abs(m).max()) or 1.0
            im = ax.imshow(m, cmap="RdBu_r", vmin=-top, vmax=top, **kw)
        else:
            im = ax.imshow(m, cmap="inferno", **kw)
        if region is not None:
            (r0, r1), (c0, c1) = region
            x0, y0 = xy(r1, c0)
            ax.add_patch(plt.Rectangle((x0, y0), (c1 - c0 + 1) * cw, (r1 - r0 + 1) * ch, fill=False, ec="cyan", lw=1.5))
        if site is not None:
            x0, y0 = xy(*site)
            ax.plot(x0 + cw / 2, y0 + ch / 2, "w+", ms=10, mew=2)
        ax.set_title(t, fontsize=9)
        if extent is not None:
            ax.set_xlabel("degrees east of the centre", fontsize=8)
            ax.set_ylabel("degrees north of the centre", fontsize=8)
            ax.tick_params(labelsize=7)
        else:
            ax.set_xlabel("west -> east (cells)")
            ax.set_ylabel("north -> south (cells)")
        bar = fig.colorbar(im, ax=ax, fraction=0.046)
        if cbar_label:
            bar.set_label(cbar_label, fontsize=7)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def day_heatmap(values, path, title, end_dates=None, window=None, ylabel="person"):
    """Rows x T heatmap over the window (lag T ... 1 days before the index date)."""
    plt = _figure()
    values = np.atleast_2d(values)
    T = values.shape[1]
    fig, ax = plt.subplots(figsize=(9, 0.25 * len(values) + 2))
    im = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
    ticks = np.linspace(0, T - 1, min(T, 8)).astype(int)
    ax.set_xticks(ticks, [f"-{T - t}" for t in ticks])
    ax.set_xlabel("days before the index date")
    if end_dates is not None and len(end_dates) == len(values) and len(values) <= 30:
        ax.set_yticks(range(len(values)), [f"{MONTHS[int(str(d)[5:7]) - 1]} {str(d)[:4]}" for d in end_dates],
                      fontsize=7)
    else:
        ax.set_ylabel(ylabel)
    if window is not None:
        ax.axvspan(window[0] - 0.5, window[-1] + 0.5, color="w", alpha=0.15, lw=0)
        ax.axvline(window[0] - 0.5, color="w", ls="--", lw=1)
        ax.axvline(window[-1] + 0.5, color="w", ls="--", lw=1)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def line_profiles(x, series, path, title, xlabel, ylabel, marks=None, xticklabels=None):
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, y in series.items():
        ax.plot(x, y, marker="o", ms=3, label=name)
    for m, label in (marks or {}).items():
        ax.axvline(m, color="k", ls=":", lw=1)
        ax.text(m, ax.get_ylim()[1], label, fontsize=8, va="top")
    if xticklabels is not None:
        ax.set_xticks(x, xticklabels, rotation=60, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def cluster_scatter(emb, labels, path, title, groups=None):
    plt = _figure()
    n = 2 if groups is not None else 1
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4.2), squeeze=False)
    for ax, (values, name) in zip(axes[0], [(labels, "routing cluster")] + ([(groups, "planted subgroup")]
                                                                              if groups is not None else [])):
        cats = sorted(set(values))
        for c in cats:
            sel = np.asarray(values) == c
            ax.scatter(emb[sel, 0], emb[sel, 1], s=6, label=str(c), alpha=0.7)
        ax.set_title(f"coloured by {name}", fontsize=9)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.legend(fontsize=7, markerscale=2)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
