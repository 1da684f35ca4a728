"""Segment-stress throughput: vectorized kernel vs a per-pair Python loop of the same formula,
peak memory of a large chunked evaluation, and featurize wall time on a trajectory folder.

Usage: python benchmarks/bench_stress.py [--points N] [--segments M] [--big-points P --big-segments S]
       [--md-dir data/md]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dislomob.features.stress import segment_stress  # noqa: E402

FLOPS_PER_PAIR = 2 * 153  # two endpoint kernels, ~153 flops each (count of the numpy expression tree)


def _scalar_pairs_per_s(n_pairs: int) -> float:
    from test_features_stress import _scalar_stress

    rng = np.random.default_rng(0)
    s0, s1, b, x = (rng.normal(size=(n_pairs, 3)) * 10 for _ in range(4))
    t0 = time.perf_counter()
    for k in range(n_pairs):
        _scalar_stress(x[k].tolist(), s0[k].tolist(), s1[k].tolist(), b[k].tolist(), 82.0, 0.29, 2.5)
    return n_pairs / (time.perf_counter() - t0)


def _vector_pairs_per_s(n_pts: int, n_seg: int, repeat: int = 3) -> float:
    rng = np.random.default_rng(1)
    s0 = rng.normal(size=(n_seg, 3)) * 50
    s1 = s0 + rng.normal(size=(n_seg, 3)) * 10
    b, x = rng.normal(size=(n_seg, 3)), rng.normal(size=(n_pts, 3)) * 50
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        segment_stress(x, s0, s1, b, 82.0, 0.29, 2.5)
        best = min(best, time.perf_counter() - t0)
    return n_pts * n_seg / best


def _peak_flops() -> float:
    n = 1024
    a, b = np.random.rand(n, n), np.random.rand(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * n**3 / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--segments", type=int, default=1000)
    ap.add_argument("--scalar-pairs", type=int, default=2000)
    ap.add_argument("--big-points", type=int, default=0)
    ap.add_argument("--big-segments", type=int, default=0)
    ap.add_argument("--md-dir", type=str, default="")
    args = ap.parse_args()
    scalar = _scalar_pairs_per_s(args.scalar_pairs)
    vector = _vector_pairs_per_s(args.points, args.segments)
    peak = _peak_flops()
    print(f"scalar per-pair loop: {scalar:,.0f} pairs/s")
    print(f"vectorized ({args.points} points x {args.segments} segments): {vector:,.0f} pairs/s; ratio {vector / scalar:,.0f}x")
    print(f"float64 matmul peak: {peak / 1e9:.1f} GFLOP/s; kernel ~{vector * FLOPS_PER_PAIR / 1e9:.2f} GFLOP/s "
          f"= {100 * vector * FLOPS_PER_PAIR / peak:.1f}% of it")
    if args.big_points and args.big_segments:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        vector_big = _vector_pairs_per_s(args.big_points, args.big_segments, repeat=1)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"big: {args.big_points} x {args.big_segments}: {vector_big:,.0f} pairs/s; "
              f"peak RSS {rss1 / 1024:.0f} MiB (grew {(rss1 - rss0) / 1024:.0f} MiB)")
    if args.md_dir:
        from dislomob.config import Config
        from dislomob.features.featurize import featurize_dataset

        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            s = featurize_dataset(Config(), args.md_dir, Path(tmp) / "graphs", Path(tmp) / "summary.json")
            print(f"featurize {args.md_dir}: {s['n_trajectories']} trajectories, {s['n_graphs']} graphs, "
                  f"{s['n_gps']} GPs in {time.perf_counter() - t0:.1f} s; pk_agreement {s['pk_agreement']}")


if __name__ == "__main__":
    main()
