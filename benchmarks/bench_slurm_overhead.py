"""Per-task overhead of dispatching MD through Slurm (Parsl's SlurmProvider) against the local executor.

Starts the one-node cluster of pipelines/cluster/local_slurm.py, then runs the same N tiny MD runs (distinct seeds,
nothing cached) through the local HighThroughputExecutor and through Slurm, alternating, ``--repeats`` times each,
with 2 runs at once in both. Prints JSON and writes benchmarks/results/slurm_overhead.json.

Usage: python benchmarks/bench_slurm_overhead.py [--runs 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from dislomob.atomic import write_json
from dislomob.config import Config, parse_config
from dislomob.md.dispatch import run_batch
from dislomob.md.run import RunSpec

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "slurm_overhead.json"
TINY_MD = {"duration_ps": 0.3, "equilibrate_ps": 0.1, "settle_ps": 0.05, "minimize_steps": 100, "threads": 1,
           "box": {"glide_nm": 3.0, "line_nm": 1.0, "height_nm": 6.0}}


def _local_slurm():
    spec = importlib.util.spec_from_file_location("local_slurm", ROOT / "pipelines" / "cluster" / "local_slurm.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["local_slurm"] = mod
    spec.loader.exec_module(mod)
    return mod


def _cfg(kind: str, run_dir: Path) -> Config:
    data = Config().model_dump()
    data["md"].update(TINY_MD)
    data["executor"].update({"kind": kind, "workers": 2, "run_dir": str(run_dir),
                             "slurm": {**data["executor"]["slurm"], "address": "127.0.0.1", "runs_per_node": 2}})
    return parse_config(data)


def timed_batch(kind: str, n: int, seed0: int, work: Path) -> float:
    """Wall seconds of ``n`` tiny runs (seeds seed0..) through executor ``kind``, from call to return."""
    cfg = _cfg(kind, work / f"parsl_{kind}_{seed0}")
    specs = [RunSpec(300.0, 0.5, 90.0, seed=seed0 + i) for i in range(n)]
    t0 = time.perf_counter()
    out = run_batch(specs, cfg, work / f"md_{kind}_{seed0}", progress=False)
    wall = time.perf_counter() - t0
    if len(out.ran) != n:
        raise RuntimeError(f"{kind}: {len(out.ran)} of {n} runs ran")
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    ls = _local_slurm()
    with tempfile.TemporaryDirectory(prefix="dislomob-slurm-bench-") as tmp:
        work = Path(tmp)
        cluster = ls.start(work / "slurm", cpus=2)
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            walls: dict[str, list[float]] = {"local": [], "slurm": []}
            for r in range(args.repeats):
                for kind in ("local", "slurm"):
                    walls[kind].append(timed_batch(kind, args.runs, 100 * (r + 1), work))
        finally:
            ls.stop(work / "slurm")
    best = {k: min(v) for k, v in walls.items()}
    out = {"machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores)",
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "runs_per_batch": args.runs,
           "runs_at_once": 2, "wall_s": walls, "best_wall_s": best,
           "ratio_slurm_to_local": best["slurm"] / best["local"],
           "overhead_per_run_s": (best["slurm"] - best["local"]) / args.runs}
    write_json(RESULTS, out)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
