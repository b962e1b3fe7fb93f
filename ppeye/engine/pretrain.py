"""Evaluating contrastive pretraining: patient <-> weather retrieval on held-out people.

``retrieval_metrics(model, dataset, cfg)`` embeds every person's patient features and weather
window with a :class:`~ppeye.modeling.pretrain.ContrastivePretrainer`, then, for each person,
ranks all the split's weather windows by similarity to their patient embedding (and all
patients by similarity to their window). A retrieved item counts as correct when it has the
person's own window (same site and dates: people of one centre seen on one day share a
window, so any of them is a right answer). Reports top-1 and top-5 accuracy both ways, and
``retrieval_top1``, their mean, the early-stopping metric of ``configs/pretrain.yaml``.
"""
import numpy as np

from ..core.paddle_env import import_paddle
from .predict import make_loader, to_tensors

paddle = import_paddle()


def embed_pairs(model, dataset, cfg, store=None):
    """(patient projections [N, P], weather projections [N, P]) in dataset order."""
    model.eval()
    loader = make_loader(dataset, cfg, shuffle=False, drop_uneven=False, store=store)
    order = [i for batch in loader.ppeye_sampler for i in batch]
    zp, zw = [], []
    with paddle.no_grad():
        for batch in loader:
            b = to_tensors(batch)
            _, ex = model(b, return_explain=True)
            zp.append(ex["patient_projection"].numpy())
            zw.append(ex["weather_projection"].numpy())
    out_p, out_w = np.empty((len(dataset), zp[0].shape[1]), np.float32), np.empty((len(dataset), zw[0].shape[1]), np.float32)
    out_p[order], out_w[order] = np.concatenate(zp), np.concatenate(zw)
    return out_p, out_w


def topk_accuracy(queries, items, same, ks=(1, 5), chunk=1024):
    """Share of queries whose k most similar items (inner product) include a correct one;
    ``same[i]`` is a key, item j is correct for query i when ``same[j] == same[i]``."""
    same = np.asarray(same)
    kmax = min(max(ks), len(items))
    hits = {k: 0 for k in ks}
    for start in range(0, len(queries), chunk):
        sim = queries[start : start + chunk] @ items.T
        top = np.argsort(-sim, axis=1, kind="stable")[:, :kmax]
        correct = same[top] == same[start : start + chunk, None]
        for k in ks:
            hits[k] += int(correct[:, :k].any(axis=1).sum())
    return {k: hits[k] / max(len(queries), 1) for k in ks}


def retrieval_metrics(model, dataset, cfg, store=None):
    zp, zw = embed_pairs(model, dataset, cfg, store)
    window = dataset.site.astype(np.int64) * 1_000_000 + dataset.start.astype(np.int64)
    p2w = topk_accuracy(zp, zw, window)
    w2p = topk_accuracy(zw, zp, window)
    chance = float(np.mean([np.mean(window == w) for w in window]))   # top-1 of a random ranking
    return {"n": len(dataset), "p2w_top1": p2w[1], "p2w_top5": p2w[5], "w2p_top1": w2p[1], "w2p_top5": w2p[5],
            "retrieval_top1": 0.5 * (p2w[1] + w2p[1]), "chance_top1": chance}
