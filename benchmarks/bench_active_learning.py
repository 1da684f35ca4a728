"""Active vs passive learning benchmark (issue 11): the paper's protocol (pool 8, select 4, threshold 0.25,
up to 15 iterations, 8 fixed test trajectories) on the demo's MD cells, several loop seeds.

The MD runs (initial grid, fixed test set, candidate stream) live in git under ``dataset.out_dir`` of the
benchmark params (datasets/al_benchmark/md), which is the content-addressed run cache: ``data`` adds runs
to it (resumable, over several sittings), ``run`` never simulates. Seeds share the grid, the test set and
the candidate stream (so MD runs once); they differ in member initialization and in passive's random
picks. Loops are resumable (dislomob.active.loop) and stop with ``stream_exhausted`` where the dataset
ends; a later ``run`` with more data continues them.

Usage:
  python benchmarks/bench_active_learning.py data [--stream N]      # MD: grid, test set, stream[0:N]
  python benchmarks/bench_active_learning.py run [--seeds 1234 1235 1236] [--strategies active passive]
  python benchmarks/bench_active_learning.py report                # JSON + PNG from the loops' records

Prints one JSON object (also written to benchmarks/results/al_benchmark.json); the figure goes to
docs/al_benchmark.png. Lengths Angstrom, T K, stresses GPa, times hours of one core.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from dislomob.active.candidates import calibration_set, candidate, test_set
from dislomob.active.loop import RECORD, run_strategy, summarize
from dislomob.active.pool import prepare_runs, stream_budget
from dislomob.atomic import atomic_path, write_json
from dislomob.config import Config, load_config
from dislomob.md.dataset import initial_specs
from dislomob.md.run import run_key

PARAMS = "pipelines/al_benchmark/params.yaml"
WORK = Path("models/al_benchmark")
RESULTS = Path("benchmarks/results/al_benchmark.json")
FIGURE = Path("docs/al_benchmark.png")


def _md(cfg: Config) -> Path:
    return Path(cfg.dataset.out_dir)


def _path(cfg: Config, spec) -> Path:
    return _md(cfg) / f"{run_key(spec, cfg.md, cfg.material)}.h5"


def stream_available(cfg: Config) -> int:
    """Candidates 0 .. n-1 of the stream whose MD the dataset holds (the first gap ends it)."""
    n = 0
    while _path(cfg, candidate(n, cfg.active.candidate_seed, cfg.active)).is_file():
        n += 1
    return n


def md_cost(cfg: Config) -> dict:
    """Runs and one-core hours of MD in the dataset, by part (wall time x md.threads of each run)."""
    from dislomob.md.trajectory import read_meta

    ac = cfg.active
    parts = {"grid": initial_specs(cfg), "test": test_set(ac.test_trajectories, ac.test_seed, ac),
             "calibration": calibration_set(ac.calibration_trajectories, ac.test_seed, ac),
             "stream": [candidate(k, ac.candidate_seed, ac) for k in range(stream_available(cfg))]}
    out = {}
    for name, specs in parts.items():
        metas = [read_meta(_path(cfg, s)) for s in specs if _path(cfg, s).is_file()]
        out[name] = {"runs": len(metas), "of": len(specs), "ok": sum(m.status == "ok" for m in metas),
                     "core_hours": round(sum(m.wall_time_s for m in metas) * cfg.md.threads / 3600, 3)}
    out["total_core_hours"] = round(sum(v["core_hours"] for v in out.values()), 3)
    return out


def cmd_data(cfg: Config, stream: int) -> dict:
    """Simulate what the dataset lacks: the grid, the test set, the calibration set, then the stream in order
    up to ``stream``."""
    from dislomob.md.dataset import simulate_dataset

    simulate_dataset(cfg, _md(cfg))
    ac = cfg.active
    for specs in (test_set(ac.test_trajectories, ac.test_seed, ac),
                  calibration_set(ac.calibration_trajectories, ac.test_seed, ac),
                  [candidate(k, ac.candidate_seed, ac) for k in range(stream)]):
        prepare_runs(specs, cfg, _md(cfg), WORK / "al_graphs", progress=True, simulate=True, featurize=False)
    return md_cost(cfg)


def cmd_run(cfg: Config, seeds: list[int], strategies: list[str]) -> None:
    """Featurize what the dataset holds (no MD), then run or resume every (seed, strategy) loop offline."""
    ac = cfg.active
    prepare_runs(initial_specs(cfg), cfg, _md(cfg), WORK / "graphs", progress=False, simulate=False, featurize=True)
    n = stream_available(cfg)
    prepare_runs(test_set(ac.test_trajectories, ac.test_seed, ac) + calibration_set(ac.calibration_trajectories, ac.test_seed, ac)
                 + [candidate(k, ac.candidate_seed, ac) for k in range(n)],
                 cfg, _md(cfg), WORK / "al_graphs", progress=False, simulate=False, featurize=True)
    for seed in seeds:
        for s in strategies:
            t0 = time.perf_counter()
            out = run_strategy(cfg, s, WORK / "graphs", _md(cfg), WORK / "al_graphs", WORK / f"seed{seed}",
                               progress=False, simulate=False, seed=seed)
            print(f"seed {seed} {s}: {out['iterations']} iterations, {out['n_queries']} queries, "
                  f"stop {out['stop_reason']}, test error {out['test_error_median']:.3f} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)


def _equal_error_saving(active: list[dict], passive: list[dict]) -> dict:
    """Queries active needs to reach passive's final test error, against passive's final queries."""
    target, q_p = passive[-1]["test_error_median"], passive[-1]["n_queries"]
    q_a = next((p["n_queries"] for p in active if p["test_error_median"] <= target), None)
    return {"passive_final_error": target, "passive_final_queries": q_p, "active_queries_to_that_error": q_a,
            "saving_pct": None if q_a is None else round(100.0 * (1 - q_a / q_p), 1)}


def cmd_report(cfg: Config) -> dict:
    """Per seed and strategy: stop, queries to threshold, final error, Spearman; medians; MD cost; figure."""
    loops: dict[str, dict[str, dict]] = {}
    for rec_path in sorted(WORK.glob(f"seed*/*/{RECORD}")):
        rec = json.loads(rec_path.read_text())
        loops.setdefault(rec_path.parent.parent.name.removeprefix("seed"), {})[rec["strategy"]] = summarize(rec)
    per_seed = {}
    for seed, by in sorted(loops.items()):
        row = {s: {**{k: v for k, v in d.items() if k != "curve"},
                   "uncertainty_error_spearman_floored": d["curve"][-1]["uncertainty_error_spearman_floored"] if d["curve"] else None}
               for s, d in by.items()}
        ended = {s for s, d in by.items() if d["curve"] and d["stop_reason"] not in (None, "stream_exhausted")}
        if {"active", "passive"} <= ended:
            row["equal_error"] = _equal_error_saving(by["active"]["curve"], by["passive"]["curve"])
        else:
            row["equal_error"] = "pending: a loop has not ended (its dataset ends first)"
        per_seed[seed] = row

    def med(strategy: str, key: str):
        v = [r[strategy][key] for r in per_seed.values() if strategy in r and r[strategy].get(key) is not None]
        return {"median": float(np.median(v)) if v else None, "n": len(v), "of": len(per_seed)}

    out = {"params": PARAMS, "machine": f"{platform.node()} {platform.machine()}", "date": time.strftime("%Y-%m-%d"),
           "protocol": {k: getattr(cfg.active, k) for k in ("pool_size", "select", "threshold", "max_iterations",
                                                             "test_trajectories", "calibrate_spread")},
           "stream_budget": stream_budget(cfg), "md": md_cost(cfg), "per_seed": per_seed,
           "median": {s: {k: med(s, k) for k in ("queries_to_threshold", "test_error_median", "n_queries",
                                                 "uncertainty_error_spearman", "uncertainty_error_spearman_floored")} for s in ("active", "passive")},
           "curves": {seed: {s: d["curve"] for s, d in by.items()} for seed, by in loops.items()}}
    write_json(RESULTS, out)
    _figure(loops, cfg.active.threshold)
    return out


def _figure(loops: dict[str, dict[str, dict]], threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), constrained_layout=True)
    style = {"active": "tab:red", "passive": "tab:blue"}
    for seed, by in sorted(loops.items()):
        for s, d in by.items():
            q = [p["n_queries"] for p in d["curve"]]
            kw = dict(color=style[s], alpha=0.8, marker="o", ms=3, label=f"{s} seed {seed}")
            axes[0].plot(q, [p["uncertainty_rel_max"] for p in d["curve"]], **kw)
            axes[1].plot(q, [p["test_error_median"] for p in d["curve"]], **kw)
            axes[2].plot(q, [np.nan if p["uncertainty_error_spearman"] is None else p["uncertainty_error_spearman"]
                             for p in d["curve"]], **kw)
            axes[3].plot(q, [p["test_spread_error_ratio"] for p in d["curve"]], **kw)
            axes[3].plot(q, [p["test_spread_error_ratio_raw"] for p in d["curve"]], **{**kw, "ls": ":", "label": None})
    axes[0].axhline(threshold, color="k", lw=0.8, ls="--")
    axes[0].set(xlabel="MD queries (initial grid included)", ylabel="highest calibrated candidate sigma / mean |dx|")
    axes[1].set(xlabel="MD queries", ylabel="median single-step error, fixed test set")
    axes[2].set(xlabel="MD queries", ylabel="Spearman(spread, error), test trajectories", ylim=(-1, 1))
    axes[3].axhline(1.0, color="k", lw=0.8, ls="--")
    axes[3].set(xlabel="MD queries", ylabel="test spread / error (solid calibrated, dotted raw)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(frameon=False, fontsize=7)
    with atomic_path(FIGURE, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default=PARAMS)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--stream", type=int, help="stream candidates to simulate (default: the loop's budget)")
    r = sub.add_parser("run")
    r.add_argument("--seeds", type=int, nargs="+", default=[1234, 1235, 1236])
    r.add_argument("--strategies", nargs="+", default=["active", "passive"], choices=["active", "passive"])
    sub.add_parser("report")
    args = p.parse_args()
    cfg = load_config(args.params)
    if args.cmd == "data":
        print(json.dumps(cmd_data(cfg, stream_budget(cfg) if args.stream is None else args.stream), indent=1))
    elif args.cmd == "run":
        cmd_run(cfg, args.seeds, args.strategies)
    print(json.dumps({k: v for k, v in cmd_report(cfg).items() if k != "curves"}, indent=1))


if __name__ == "__main__":
    main()
