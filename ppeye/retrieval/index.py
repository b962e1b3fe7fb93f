"""A faiss index over the training set's fused embeddings and the retrieval blend.

    p_knn   = mean of the labels of the k nearest training people
    p_final = (1 - alpha) * p_model + alpha * p_knn

Similarity is cosine (inner product of L2-normalised vectors) or Euclidean; the index is
exact (``flat``, the default) or approximate (``ivf``: inverted lists, ``hnsw``: graph) for
large training sets. ``k`` and ``alpha`` are chosen on the validation split over the
configured grids (alpha = 0, the model alone, is always a candidate, so the blend is never
chosen when it does not help on validation). Querying with training people passes their
positions as ``exclude`` so nobody is ever their own neighbour.
"""
import json
import os

import numpy as np

from ..core.errors import ConfigError, InputError
from ..core.io import atomic_directory
from ..core.optional import require
from ..metrics import multilabel_metrics

INDEX_FILE, LABELS_FILE, PARAMS_FILE = "index.faiss", "labels.npy", "params.json"


def _faiss():
    return require("faiss")


class RetrievalIndex:
    def __init__(self, metric="cosine", kind="flat", nlist=1024, nprobe=16, hnsw_m=32, ef_search=64, seed=0):
        if metric not in ("cosine", "l2"):
            raise ConfigError(f"retrieval.metric must be cosine or l2, got {metric!r}")
        if kind not in ("flat", "ivf", "hnsw"):
            raise ConfigError(f"retrieval.index must be flat, ivf or hnsw, got {kind!r}")
        self.metric, self.kind = metric, kind
        self.nlist, self.nprobe, self.hnsw_m, self.ef_search, self.seed = nlist, nprobe, hnsw_m, ef_search, seed
        self.index, self.labels = None, None
        self.k, self.alpha = 10, 0.0
        self.grid = []

    @classmethod
    def from_config(cls, rc, seed=0):
        return cls(rc.get("metric", "cosine"), rc.get("index", "flat"), int(rc.get("ivf_nlist", 1024)),
                   int(rc.get("ivf_nprobe", 16)), int(rc.get("hnsw_m", 32)), int(rc.get("hnsw_ef_search", 64)), seed)

    # ------------------------------------------------------------------ build and search
    def _vectors(self, x):
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        if x.ndim != 2:
            raise InputError(f"retrieval: embeddings must be [N, D], got shape {x.shape}")
        if self.index is not None and x.shape[1] != self.index.d:
            raise InputError(f"retrieval: embeddings have {x.shape[1]} dimensions, the index {self.index.d}")
        if not np.isfinite(x).all():
            raise InputError("retrieval: embeddings contain NaN or inf")
        if self.metric == "cosine":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x

    def build(self, embeddings, labels):
        faiss = _faiss()
        labels = np.asarray(labels, dtype=np.float32)
        if len(labels) != len(embeddings):
            raise InputError(f"retrieval: {len(embeddings)} embeddings but {len(labels)} label rows")
        x = self._vectors(embeddings)
        n, d = x.shape
        mt = faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2
        if self.kind == "flat":
            index = faiss.IndexFlatIP(d) if self.metric == "cosine" else faiss.IndexFlatL2(d)
        elif self.kind == "ivf":
            nlist = max(1, min(self.nlist, n // 39))     # faiss wants >= 39 training points per list
            quantizer = faiss.IndexFlatIP(d) if self.metric == "cosine" else faiss.IndexFlatL2(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, mt)
            index.cp.seed = self.seed
            index.train(x)
            index.nprobe = min(self.nprobe, nlist)
        else:
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, mt)
            index.hnsw.efSearch = self.ef_search
        index.add(x)
        self.index, self.labels = index, labels
        return self

    def search(self, queries, k, exclude=None):
        """(scores [Q, k], neighbour positions [Q, k]); ``exclude[i]`` (a training position or
        -1) is never returned for query i. Missing neighbours (approximate search) are -1."""
        if self.index is None:
            raise InputError("retrieval: the index is empty; build() or load() it first")
        q = self._vectors(queries)
        k = int(min(k, self.index.ntotal - (exclude is not None)))
        if k < 1:
            raise InputError("retrieval: the index has too few entries for a neighbour search")
        extra = 1 if exclude is not None else 0
        scores, idx = self.index.search(q, k + extra)
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64).reshape(-1, 1)
            if len(exclude) != len(q):
                raise InputError(f"retrieval: exclude has {len(exclude)} entries for {len(q)} queries")
            keep = idx != exclude
            # in each row keep the first k entries that are not the query itself
            keep &= np.cumsum(keep, axis=1) <= k
            rows = np.nonzero(keep)
            out_s = np.full((len(q), k), np.nan, dtype=np.float32)
            out_i = np.full((len(q), k), -1, dtype=np.int64)
            col = np.cumsum(keep, axis=1)[rows] - 1
            out_s[rows[0], col] = scores[rows]
            out_i[rows[0], col] = idx[rows]
            scores, idx = out_s, out_i
        return scores, idx

    def p_knn(self, queries, k=None, exclude=None):
        """Mean label of the k nearest training people [Q, L]."""
        _, idx = self.search(queries, k or self.k, exclude)
        valid = idx >= 0
        lab = self.labels[np.where(valid, idx, 0)] * valid[..., None]
        return lab.sum(1) / np.maximum(valid.sum(1, keepdims=True), 1)

    def blend(self, p_model, queries, exclude=None, k=None, alpha=None):
        alpha = self.alpha if alpha is None else alpha
        if alpha == 0:
            return np.asarray(p_model, dtype=np.float64)
        return (1 - alpha) * np.asarray(p_model, dtype=np.float64) + alpha * self.p_knn(queries, k, exclude)

    # ------------------------------------------------------------------ selection
    def choose(self, p_model, queries, labels, k_grid, alpha_grid, metric="macro_roc_auc"):
        """Set k and alpha to the best ``metric`` on these (validation) people; returns the grid."""
        k_grid = sorted({int(k) for k in k_grid})
        alpha_grid = sorted({float(a) for a in alpha_grid} | {0.0})
        if not k_grid or min(k_grid) < 1 or not all(0 <= a <= 1 for a in alpha_grid):
            raise ConfigError(f"retrieval.k_grid must hold ints >= 1 and alpha_grid values in [0, 1], got "
                              f"{k_grid} and {alpha_grid}")
        base = multilabel_metrics(labels, p_model)[metric]
        grid, best = [], (base, k_grid[0], 0.0)
        for k in k_grid:
            knn = self.p_knn(queries, k)
            for a in alpha_grid:
                if a == 0:
                    continue
                score = multilabel_metrics(labels, (1 - a) * np.asarray(p_model) + a * knn)[metric]
                grid.append({"k": k, "alpha": a, metric: float(score)})
                if np.isfinite(score) and score > best[0] + 1e-12:
                    best = (score, k, a)
        self.k, self.alpha = best[1], best[2]
        self.grid = [{"k": 0, "alpha": 0.0, metric: float(base)}] + grid
        return self.grid

    @property
    def params(self):
        return {"metric": self.metric, "index": self.kind, "k": int(self.k), "alpha": float(self.alpha),
                "n": int(self.index.ntotal) if self.index is not None else 0,
                "dim": int(self.index.d) if self.index is not None else 0}

    # ------------------------------------------------------------------ files
    def save(self, path, extra=None):
        faiss = _faiss()
        with atomic_directory(path, overwrite=True) as tmp:
            faiss.write_index(self.index, os.path.join(tmp, INDEX_FILE))
            np.save(os.path.join(tmp, LABELS_FILE), self.labels)
            params = self.params | {"nlist": self.nlist, "nprobe": self.nprobe, "hnsw_m": self.hnsw_m,
                                    "ef_search": self.ef_search, "grid": self.grid} | (extra or {})
            with open(os.path.join(tmp, PARAMS_FILE), "w") as f:
                json.dump(params, f, indent=1)
        return path

    @classmethod
    def load(cls, path):
        files = [os.path.join(path, f) for f in (INDEX_FILE, LABELS_FILE, PARAMS_FILE)]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise InputError(f"{path} is not a retrieval index: missing {', '.join(map(os.path.basename, missing))}")
        p = json.load(open(files[2]))
        self = cls(p["metric"], p["index"], p.get("nlist", 1024), p.get("nprobe", 16), p.get("hnsw_m", 32),
                   p.get("ef_search", 64))
        self.index = _faiss().read_index(files[0])
        if self.kind == "ivf":
            self.index.nprobe = self.nprobe
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = self.ef_search
        self.labels = np.load(files[1])
        if len(self.labels) != self.index.ntotal:
            raise InputError(f"{path}: {self.index.ntotal} vectors but {len(self.labels)} label rows")
        self.k, self.alpha, self.grid = int(p["k"]), float(p["alpha"]), p.get("grid", [])
        self.extra = {k: v for k, v in p.items() if k in ("checkpoint", "config_fingerprint")}
        return self


def build_index(predict, train_set, val_set, rc, seed):
    """Index the training people's embeddings and choose k / alpha on validation.

    ``predict(dataset)`` returns a prediction with ``probs``, ``embeddings`` and ``labels`` (e.g.
    ``Trainer.predict(dataset, with_embeddings=True)``, or any model's); ``rc``: the ``retrieval``
    config section; ``val_set`` None keeps the first k and alpha 0 (the model alone)."""
    train_pred = predict(train_set)
    index = RetrievalIndex.from_config(rc, seed).build(train_pred.embeddings, train_pred.labels)
    if val_set is not None:
        val_pred = predict(val_set)
        index.choose(val_pred.probs, val_pred.embeddings, val_pred.labels, rc["k_grid"], rc["alpha_grid"],
                     rc.get("select_metric", "macro_roc_auc"))
    else:
        index.k, index.alpha = int(rc["k_grid"][0]), 0.0
    return index
