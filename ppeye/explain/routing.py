"""MoE routing analysis: which experts each person uses, and whether they specialise.

A person's routing vector concatenates, for every MoE layer, the mean router probability of
each expert over that person's tokens (days, ensemble members). People are clustered on these
vectors (k-means) and embedded in 2-D (PCA) for the plot; clusters are cross-tabulated with
patient attributes (age band, sex, season of the index date, centre); the agreement of the
clusters with known subgroups is the adjusted Rand index (0 = chance, 1 = identical).
"""
import numpy as np

from ..core.errors import InputError


def routing_vectors(explain, batch):
    """[B, sum of experts] per-person mean router probabilities, and {place: (start, stop)}."""
    parts, spans, start = [], {}, 0
    for place, r in sorted(explain.get("routing", {}).items()):
        probs = r["probs"].numpy()
        if probs.shape[0] % batch:
            raise InputError(f"MoE {place}: {probs.shape[0]} tokens do not split over {batch} people")
        v = probs.reshape(batch, -1, probs.shape[-1]).mean(1)
        parts.append(v)
        spans[place] = (start, start + v.shape[1])
        start += v.shape[1]
    if not parts:
        raise InputError("this model has no MoE layer (model.moe.enabled and a per-place moe.enabled): "
                         "there is no routing to analyse")
    return np.concatenate(parts, 1), spans


def expert_usage(vectors, spans):
    """{place: mean router probability per expert}."""
    return {p: vectors[:, a:b].mean(0) for p, (a, b) in spans.items()}


def cluster(vectors, k=4, seed=0):
    """(labels [N], 2-D embedding [N, 2]) by k-means on standardised vectors and PCA."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    x = np.asarray(vectors, np.float64)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
    k = max(1, min(int(k), len(x)))
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    emb = PCA(n_components=min(2, x.shape[1]), random_state=seed).fit_transform(x)
    if emb.shape[1] == 1:
        emb = np.concatenate([emb, np.zeros_like(emb)], 1)
    return labels, emb


def crosstab(labels, attribute):
    """{cluster: {value: count}} of an attribute (array of strings/ints) by cluster."""
    out = {}
    for c in np.unique(labels):
        vals, counts = np.unique(np.asarray(attribute)[labels == c], return_counts=True)
        out[int(c)] = {str(v): int(n) for v, n in zip(vals, counts)}
    return out


def adjusted_rand(labels, groups):
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.asarray(groups), np.asarray(labels)))
