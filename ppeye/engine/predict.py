"""Batched prediction over a dataset, in dataset order, on one process or sharded over ranks.

``predict(model, dataset, cfg)`` returns a :class:`Predictions` (labels, probabilities and,
when asked, the fused embeddings the retrieval index is built from). Under fleet each rank
predicts every ``world``-th batch and the pieces are gathered, so every rank ends with the
whole split's predictions before any metric is computed.
"""
from dataclasses import dataclass

import numpy as np

from ..core.paddle_env import import_paddle
from ..metrics import DISEASES

paddle = import_paddle()


@dataclass
class Predictions:
    labels: np.ndarray                 # [N, 4] float
    probs: np.ndarray                  # [N, 4] float64
    embeddings: np.ndarray = None      # [N, width] float32 (with_embeddings=True)


def to_tensors(batch):
    return {k: v if isinstance(v, paddle.Tensor) else paddle.to_tensor(v) for k, v in batch.items()}


def make_loader(dataset, cfg, shuffle=False, seed=0, num_replicas=1, rank=0, drop_uneven=True):
    """A DataLoader over site/date-grouped batches (``loader.group_by_site``), its sampler on
    ``loader.ppeye_sampler``. ``drop_uneven=False`` keeps every batch when sharding (evaluation)."""
    from ..data.dataset import SiteDateBatchSampler, WeatherCollator

    lc = cfg["loader"]
    sampler = SiteDateBatchSampler(dataset, int(lc["batch_size"]), shuffle=shuffle, seed=seed,
                                   group=bool(lc.get("group_by_site", True)), num_replicas=num_replicas,
                                   rank=rank, drop_uneven=drop_uneven)
    loader = paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=WeatherCollator(dataset.store),
                                  num_workers=int(lc.get("num_workers", 0)), return_list=True)
    loader.ppeye_sampler = sampler
    return loader


def predict(model, dataset, cfg, with_embeddings=False, num_replicas=1, rank=0):
    """Probabilities (and embeddings) for every person of ``dataset``, in dataset order."""
    model.eval()
    loader = make_loader(dataset, cfg, shuffle=False, num_replicas=num_replicas, rank=rank, drop_uneven=False)
    order = [i for batch in loader.ppeye_sampler for i in batch]
    probs, embs = [], []
    with paddle.no_grad():
        for batch in loader:
            b = to_tensors(batch)
            out = model(b["weather_unique"], b["day_index"], b["tab"], b["tab_mask"], return_explain=with_embeddings)
            logits, ex = out if with_embeddings else (out, None)
            probs.append(paddle.nn.functional.sigmoid(logits).numpy().astype(np.float64))
            if with_embeddings:
                embs.append(ex["embedding"].numpy().astype(np.float32))
    width = getattr(model, "width", 0)
    order = np.asarray(order, dtype=np.int64)
    probs = np.concatenate(probs) if probs else np.zeros((0, len(DISEASES)))
    embs = (np.concatenate(embs) if embs else np.zeros((0, width), np.float32)) if with_embeddings else None
    if num_replicas > 1:
        order, probs, embs = _gather(order, probs, embs)
    p = np.full((len(dataset), len(DISEASES)), np.nan)
    p[order] = probs
    e = None
    if with_embeddings:
        e = np.zeros((len(dataset), embs.shape[1]), np.float32)
        e[order] = embs
    if len(np.unique(order)) != len(dataset):
        raise RuntimeError(f"prediction covered {len(np.unique(order))} of {len(dataset)} people")
    return Predictions(dataset.labels.astype(np.float64), p, e)


def _gather(order, probs, embs):
    """All-gather variable-length per-rank pieces (padded to the longest, then trimmed)."""
    import paddle.distributed as dist

    n = paddle.to_tensor([len(order)], dtype="int64")
    sizes = []
    dist.all_gather(sizes, n)
    sizes = [int(s.item()) for s in sizes]
    longest = max(sizes)

    def gather(a):
        pad = np.zeros((longest - len(a),) + a.shape[1:], dtype=a.dtype)
        parts = []
        dist.all_gather(parts, paddle.to_tensor(np.concatenate([a, pad])))
        return np.concatenate([p.numpy()[:s] for p, s in zip(parts, sizes)])

    return gather(order), gather(probs), (gather(embs) if embs is not None else None)
