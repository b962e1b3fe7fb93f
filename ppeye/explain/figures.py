"""Figures of the explanations (matplotlib, PNG written atomically)."""
import numpy as np

from ..metrics.plots import _figure, _save

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def spatial_maps(maps, titles, path, region=None, site=None, suptitle="", ncols=None, signed=False):
    """One panel per map [H, W] (box row 0 = north), the site cell and the region outlined;
    ``ncols`` panels a row (default: all in one row); ``signed``: a diverging scale centred on 0."""
    plt = _figure()
    ncols = ncols or len(maps)
    nrows = -(-len(maps) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.3 if nrows == 1 else 2.8 * nrows), squeeze=False)
    for ax in axes.ravel()[len(maps):]:
        ax.axis("off")
    for ax, m, t in zip(axes.ravel(), maps, titles):
        if signed:
            top = float(np.abs(m).max()) or 1.0
            im = ax.imshow(m, cmap="RdBu_r", vmin=-top, vmax=top, origin="upper")
        else:
            im = ax.imshow(m, cmap="inferno", origin="upper")
        if region is not None:
            (r0, r1), (c0, c1) = region
            ax.add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, ec="cyan", lw=1.5))
        if site is not None:
            ax.plot(site[1], site[0], "w+", ms=10, mew=2)
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("west -> east (cells)")
        ax.set_ylabel("north -> south (cells)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(suptitle)
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
