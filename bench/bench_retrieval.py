#!/usr/bin/env python
"""Retrieval search (printed, not asserted): faiss exact / IVF / HNSW vs numpy brute force
for 100,000 x 512 float32 embeddings (cosine), 1,000 queries, k = 10, in the same run:
build time, search time, queries per second and recall@10 against the exact neighbours.

The vectors are drawn around 200 clusters (embeddings of people are clustered, not uniform;
IVF and HNSW are at their worst on structureless data, which is also reported with --uniform).

    python bench/bench_retrieval.py [--n 100000] [--dim 512] [--queries 1000] [--uniform]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ppeye.retrieval import RetrievalIndex  # noqa: E402


def numpy_topk(x, q, k, chunk=256):
    """Exact cosine top-k by matrix products (x, q already normalised)."""
    out = np.empty((len(q), k), dtype=np.int64)
    for i in range(0, len(q), chunk):
        s = q[i : i + chunk] @ x.T
        part = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, 1), axis=1)
        out[i : i + chunk] = np.take_along_axis(part, order, 1)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--uniform", action="store_true", help="unclustered Gaussian vectors")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    if args.uniform:
        x = rng.normal(size=(args.n, args.dim)).astype(np.float32)
        q = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    else:
        centres = rng.normal(size=(200, args.dim)).astype(np.float32)
        x = centres[rng.integers(0, 200, args.n)] + 0.5 * rng.normal(size=(args.n, args.dim)).astype(np.float32)
        q = centres[rng.integers(0, 200, args.queries)] + 0.5 * rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    labels = rng.integers(0, 2, (args.n, 4)).astype(np.float32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)

    t0 = time.perf_counter()
    truth = numpy_topk(xn, qn, args.k)
    t_np = time.perf_counter() - t0
    print(f"{args.n:,} x {args.dim} vectors ({'uniform' if args.uniform else '200 clusters'}), "
          f"{args.queries:,} queries, k={args.k}, cosine")
    print(f"  {'method':<32} {'build s':>8} {'search s':>9} {'queries/s':>10} {'vs numpy':>9} {'recall@10':>10}")
    print(f"  {'numpy brute force':<32} {0.0:8.2f} {t_np:9.3f} {args.queries / t_np:10.0f} {1.0:8.2f}x {1.0:10.3f}")
    cases = [("faiss flat (exact)", dict(kind="flat")),
             ("faiss IVF nlist=1024 nprobe=16", dict(kind="ivf", nlist=1024, nprobe=16)),
             ("faiss IVF nlist=1024 nprobe=64", dict(kind="ivf", nlist=1024, nprobe=64)),
             ("faiss HNSW M=32 ef=64", dict(kind="hnsw", hnsw_m=32, ef_search=64)),
             ("faiss HNSW M=32 ef=256", dict(kind="hnsw", hnsw_m=32, ef_search=256))]
    for name, kw in cases:
        t0 = time.perf_counter()
        index = RetrievalIndex("cosine", **kw).build(x, labels)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, idx = index.search(q, args.k)
        t = time.perf_counter() - t0
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(idx, truth)])
        print(f"  {name:<32} {t_build:8.2f} {t:9.3f} {args.queries / t:10.0f} {t_np / t:8.2f}x {recall:10.3f}")


if __name__ == "__main__":
    main()
