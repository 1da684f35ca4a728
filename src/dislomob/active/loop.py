"""The active / passive learning loop (paper Fig. 2-3, Methods "Active learning"), resumable.

One strategy at a time, in ``work_dir/<strategy>/`` (DP-GEN style: one folder per iteration,
``iter_000/ensemble.pt`` ..., and ``record.json``, rewritten atomically after each completed iteration).
Iteration i:

1. train the ensemble on the training set S_i (i = 0: the initial grid's training part; later warm
   from iteration i-1's weights and feature scales), validation on the grid's fixed validation part;
2. evaluate it on the fixed test set (trajectories drawn from the candidate distribution with their
   own seed, never trained on): median single-step relative error, relative spread, and the Spearman
   rank correlation between per-trajectory spread and error;
3. fill the pool to ``pool_size`` from the seeded candidate stream (dislomob.active.candidates: the
   same stream for every strategy, so MD runs are shared), simulate and featurize what is missing; a
   failed, cut or graphless run is dropped with its reason and replaced from the stream;
4. score every pool candidate (dislomob.active.scoring); stop when the highest score is below
   ``threshold`` (reached) or when i = ``max_iterations`` (not reached);
5. select ``select`` candidates (``active``: highest scores; ``passive``: seeded random) into S_{i+1}.

Queries are counted as the paper counts them: every simulated trajectory that the strategy paid for,
the initial grid included (initial + the first pool + each refill; a candidate whose MD failed counts
too). The fixed test set is evaluation, not learning, and is not counted.

Scores are calibrated (``active.calibrate_spread``, dislomob.active.scoring): each iteration the raw
spread is multiplied by a factor fitted on the calibration set only (``active.calibration_trajectories``
held-out runs of the candidate distribution, own stream, never trained or tested on; the grid's
validation part is not the candidates' distribution: its slow 300-500 K / 0.25-0.5 GPa lines have
larger relative errors); the raw values are recorded beside the calibrated ones.

Each iteration is an MLflow child run of the strategy's parent run (tags ``strategy``, ``seed``), with
the candidates' parameters and scores as a table artifact; the parent carries the same metrics as step
series over the number of queries. A loop killed at any moment continues after its last completed
iteration: the record names the pool, the training set and the checkpoint; MD runs and graphs are
cached by content. Offline (no MD), a loop whose pool cannot be filled from the cache stops with
``stream_exhausted`` before training that iteration, and continues from there once more runs exist.
The loop seed (``seed``; default the params' seed) sets member initialization and passive's random
picks; the data (grid, split, candidate stream, test set) do not depend on it. Lengths in Angstrom,
T in K, stresses in GPa.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dislomob.active.candidates import calibration_set, candidate, test_set
from dislomob.active.pool import RunData, prepare_runs
from dislomob.active.scoring import trajectory_stats
from dislomob.atomic import write_json
from dislomob.config import Config
from dislomob.model.floors import mean_law_errors

log = logging.getLogger(__name__)
RECORD = "record.json"
CURVE_KEYS = ("n_queries", "test_error_median", "uncertainty_rel_max", "uncertainty_rel_mean", "uncertainty_rel_max_raw",
              "spread_calibration", "test_spread_error_ratio", "test_spread_error_ratio_raw",
              "uncertainty_error_spearman", "uncertainty_error_spearman_floored")


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman rank correlation of two equally long sequences (average ranks for ties); None below 3 values."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs equally long sequences, got {len(x)} and {len(y)}")
    if len(x) < 3:
        return None

    def ranks(v: list[float]) -> np.ndarray:
        a = np.asarray(v, dtype=np.float64)
        order = np.argsort(a, kind="stable")
        r = np.empty(len(a))
        r[order] = np.arange(len(a), dtype=np.float64)
        for val in np.unique(a):
            tie = a == val
            r[tie] = r[tie].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def initial_split(by_traj: dict[str, list], cfg: Config) -> dict[str, list[str]]:
    """Training and validation trajectories of the initial grid: the train stage's split (stratified by
    character bucket, seeded by the params' seed), whose test part joins training (active learning is
    scored on its own fixed test set). Saved in the record, never redrawn."""
    from dislomob.train.buckets import bucket_of
    from dislomob.train.data import split_by_trajectory

    groups = {t: bucket_of(float(gs[0].angle_deg.reshape(-1)[0])) for t, gs in by_traj.items()}
    parts = split_by_trajectory(sorted(by_traj), cfg.train.split, cfg.seed, groups)
    return {"train": sorted(parts["train"] + parts["test"]), "val": sorted(parts["val"])}


def _graphs_of(paths: list[Path]) -> dict[str, list]:
    from dislomob.features.graphs import load_graphs

    return {p.stem: load_graphs(p) for p in paths}


def evaluate_on_test(model, test: dict[str, list], floor: float, calibration: float = 1.0) -> dict[str, Any]:
    """Median single-step relative error over all graphs of the fixed test set, the trajectories' mean
    calibrated spread score, their spread / error ratio (raw and calibrated), the Spearman
    correlation of spread and median error over trajectories, and the mean-law floor on the same graphs
    (dislomob.model.floors)."""
    per_traj, errors = {}, []
    for tid, graphs in sorted(test.items()):
        st = trajectory_stats(model, graphs, floor)
        errors += st["error"]
        per_traj[tid] = {"error_median": float(np.median(st["error"])),
                         "error_floored_median": float(np.median(st["error_floored"])),
                         "uncertainty_raw": float(np.mean(st["spread"])),
                         "uncertainty": calibration * float(np.mean(st["spread"]))}
    unc = [v["uncertainty"] for v in per_traj.values()]
    ratio = float(np.median([v["uncertainty_raw"] for v in per_traj.values()])
                  / max(float(np.median([v["error_floored_median"] for v in per_traj.values()])), 1e-12))
    floor = mean_law_errors([g for _, graphs in sorted(test.items()) for g in graphs])
    return {"test_error_median": float(np.median(errors)),
            "test_floor_mean_law_median": float(np.nanmedian(floor)),
            "test_uncertainty_mean": float(np.mean(unc)),
            "test_spread_error_ratio_raw": ratio, "test_spread_error_ratio": calibration * ratio,
            "uncertainty_error_spearman_test": spearman(unc, [v["error_median"] for v in per_traj.values()]),
            "uncertainty_error_spearman_floored_test": spearman(unc, [v["error_floored_median"] for v in per_traj.values()]),
            "per_trajectory": per_traj}


def fit_calibration(model, held_out: dict[str, list], floor: float, enabled: bool) -> float:
    """The spread calibration factor on held-out trajectories (the calibration set; 1.0 when disabled)."""
    if not enabled:
        return 1.0
    from dislomob.active.scoring import spread_calibration

    errors, spreads = [], []
    for graphs in held_out.values():
        st = trajectory_stats(model, graphs, floor)
        errors += st["error_floored"]
        spreads += st["spread"]
    return spread_calibration(errors, spreads)


def _read_record(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        from dislomob.errors import InputFileError

        raise InputFileError(f"{path}: unreadable active-learning record ({err}); move it away to start over") from None


def _mlflow(cfg: Config, strategy: str, seed: int, parent_id: str | None):
    """Open (or reopen) the strategy's parent run in ``active.experiment``; runs of dead processes end KILLED."""
    import mlflow

    from dislomob.tracking import end_orphaned_runs, ended_on_exit, owner_tags, tracking_setup

    end_orphaned_runs(tracking_setup(cfg.train.tracking_uri, cfg.active.experiment))
    if parent_id is not None:
        run = mlflow.start_run(run_id=parent_id)
        mlflow.set_tags(owner_tags())
        return ended_on_exit(run)
    return ended_on_exit(mlflow.start_run(run_name=f"{strategy}-seed{seed}",
                                          tags={"strategy": strategy, "seed": str(seed), **owner_tags()}))


@dataclass
class Loop:
    """One strategy's loop between iterations: its settings, folders, record (the resume point) and graphs."""

    cfg: Config
    strategy: str
    seed: int
    home: Path
    md_dir: Path
    graphs_dir: Path
    progress: bool
    simulate: bool
    record: dict
    graphs: dict[str, list]  # trajectory id -> graphs: the initial grid and the selected candidates
    test: dict[str, list]
    calibration: dict[str, list]

    @property
    def train_ids(self) -> list[str]:
        return list(self.record["split"]["train"]) + [t for it in self.record["iterations"] for t in it["selected_ids"]]

    @property
    def n_initial(self) -> int:
        return len(self.record["split"]["train"]) + len(self.record["split"]["val"])


def _held_out(runs: list[RunData], what: str) -> dict[str, list]:
    """Graphs of the usable runs of a fixed held-out set; one the caches lack is an error (a set that grew
    between iterations would not be fixed), a failed one is left out for good (its reason is recorded)."""
    from dislomob.errors import InputFileError

    missing = [r.reason for r in runs if r.missing]
    if missing:
        raise InputFileError(f"{what} set incomplete, run `dislomob al-data` (or simulate online): {missing}")
    graphs = _graphs_of([r.graph_path for r in runs if r.usable])
    if not graphs:
        raise RuntimeError(f"no usable {what} trajectory among {len(runs)}: {[r.reason for r in runs]}")
    return graphs


def open_loop(cfg: Config, strategy: str, initial_graphs_dir: str | Path, md_dir: str | Path, graphs_dir: str | Path,
              work_dir: str | Path, progress: bool = True, simulate: bool = True, seed: int | None = None) -> Loop:
    """Read (or start) the strategy's record, the initial grid, the fixed test set and the selected graphs."""
    from dislomob.train.data import load_graph_dir

    if strategy not in ("active", "passive"):
        raise ValueError(f"strategy={strategy!r} not allowed: 'active' or 'passive'")
    seed = cfg.seed if seed is None else seed
    home = Path(work_dir) / strategy
    home.mkdir(parents=True, exist_ok=True)
    record = _read_record(home / RECORD) or {"strategy": strategy, "seed": seed, "iterations": [],
                                             "next_stream_index": 0, "stopped": None, "parent_run_id": None}
    if record.get("seed", seed) != seed:
        raise ValueError(f"seed={seed} not allowed for {home}: its record was made with seed {record['seed']} "
                         "(use another --work-dir)")
    graphs: dict[str, list] = {}
    for g in load_graph_dir(initial_graphs_dir):
        graphs.setdefault(str(g.traj_id), []).append(g)
    record.setdefault("split", initial_split(graphs, cfg))
    ac = cfg.active
    t0 = time.perf_counter()
    test_runs = prepare_runs(test_set(ac.test_trajectories, ac.test_seed, ac), cfg, md_dir, graphs_dir, progress,
                             simulate)
    record["test_dropped"] = {r.traj_id: r.reason for r in test_runs if not r.usable}
    record["pending_md_seconds"] = record.get("pending_md_seconds", 0.0) + time.perf_counter() - t0
    test = _held_out(test_runs, "test")
    calibration: dict[str, list] = {}
    if ac.calibrate_spread:
        t0 = time.perf_counter()
        cal_runs = prepare_runs(calibration_set(ac.calibration_trajectories, ac.test_seed, ac), cfg, md_dir, graphs_dir,
                                progress, simulate)
        record["calibration_dropped"] = {r.traj_id: r.reason for r in cal_runs if not r.usable}
        record["pending_md_seconds"] += time.perf_counter() - t0
        calibration = _held_out(cal_runs, "calibration")
    _reopen(record, cfg, strategy, seed)
    for it in record["iterations"]:
        graphs.update(_graphs_of([Path(graphs_dir) / f"{t}.pt" for t in it["selected_ids"]]))
    return Loop(cfg, strategy, seed, home, Path(md_dir), Path(graphs_dir), progress, simulate, record, graphs, test,
                calibration)


def fill_pool(loop: Loop, pool: list[int]) -> tuple[dict[str, str], bool]:
    """Fill ``pool`` (stream indices, in place) to ``pool_size`` from the candidate stream; unusable runs are
    dropped with their reasons. Returns (dropped, exhausted): offline, the stream is exhausted at the
    first candidate the MD cache lacks; the pool and the stream index are then left as they were (the
    record keeps no half-filled pool), so a later call fills the same candidates in the same order."""
    ac, rec = loop.cfg.active, loop.record
    dropped: dict[str, str] = {}
    start_index, start_len = rec["next_stream_index"], len(pool)
    while len(pool) < ac.pool_size:
        ks = list(range(rec["next_stream_index"], rec["next_stream_index"] + ac.pool_size - len(pool)))
        runs = prepare_runs([candidate(k, ac.candidate_seed, ac) for k in ks], loop.cfg, loop.md_dir, loop.graphs_dir,
                            loop.progress, loop.simulate)
        for k, run in zip(ks, runs):
            if run.missing:
                rec["next_stream_index"] = start_index
                del pool[start_len:]
                return dropped, True
            rec["next_stream_index"] = k + 1
            if run.usable:
                pool.append(k)
            else:
                dropped[str(k)] = run.reason or "unusable"
                log.warning("%s loop: candidate %d (%s) dropped from the pool: %s", loop.strategy, k, run.traj_id,
                            dropped[str(k)])
    return dropped, False


def score_pool(loop: Loop, model, pool: list[int], calibration: float) -> list[dict[str, Any]]:
    """Per pool candidate: stream index, run, graphs, raw and calibrated score, median relative error."""
    floor = loop.cfg.active.noise_floor_angstrom
    out = []
    for k in pool:
        run = _run_of(k, loop.cfg, loop.md_dir, loop.graphs_dir)
        graphs = _graphs_of([run.graph_path])[run.traj_id]
        st = trajectory_stats(model, graphs, floor)
        raw = float(np.mean(st["spread"]))
        out.append({"k": k, "run": run, "graphs": graphs, "score_raw": raw, "score": calibration * raw,
                    "error_median": float(np.median(st["error"]))})
    return out


def run_iteration(loop: Loop, pool: list[int], dropped: dict[str, str], md_seconds: float) -> dict[str, Any]:
    """Train (warm from the previous iteration), calibrate, evaluate on the fixed test set, score the pool,
    decide stop or selection; inside the iteration's MLflow child run. Returns the record entry."""
    import mlflow

    from dislomob.model.ensemble import save_ensemble
    from dislomob.tracking import ended_on_exit, owner_tags
    from dislomob.train.stage import train_ensemble
    from dislomob.tune.params import tuned_train_config

    cfg, ac, done = loop.cfg, loop.cfg.active, loop.record["iterations"]
    i = len(done)
    it_dir = loop.home / f"iter_{i:03d}"
    train_ids, val_ids = loop.train_ids, loop.record["split"]["val"]
    # the iteration's child run gets the training curves (Lightning logs to the active run) and the table
    with ended_on_exit(mlflow.start_run(run_name=f"iter_{i:03d}", nested=True, tags={**owner_tags(), "iteration": str(i)})):
        tc = tuned_train_config(cfg.train).model_copy(
            update={"warm_start": str(loop.home / f"iter_{i - 1:03d}" / "ensemble.pt") if i else None})
        t0 = time.perf_counter()
        res = train_ensemble([g for t in train_ids + val_ids for g in loop.graphs[t]], tc, loop.seed + i, it_dir,
                             progress=loop.progress, parts={"train": train_ids, "val": val_ids})
        train_seconds = time.perf_counter() - t0
        model, floor = res.model, ac.noise_floor_angstrom
        calibration = fit_calibration(model, loop.calibration, floor, ac.calibrate_spread)
        ev = evaluate_on_test(model, loop.test, floor, calibration)
        cands = score_pool(loop, model, pool, calibration)
        scores = [c["score"] for c in cands]
        reached = max(scores) < ac.threshold
        stop = "threshold" if reached else "max_iterations" if i >= ac.max_iterations else None
        pick = [] if stop is not None else _pick(loop.strategy, scores, [c["run"].traj_id for c in cands], i, cfg, loop.seed)
        metrics = {"n_queries": loop.n_initial + loop.record["next_stream_index"], "n_train_trajectories": len(train_ids),
                   "uncertainty_rel_max": float(max(scores)), "uncertainty_rel_mean": float(np.mean(scores)),
                   "uncertainty_rel_max_raw": float(max(c["score_raw"] for c in cands)),
                   "spread_calibration": calibration,
                   "test_error_median": ev["test_error_median"], "test_uncertainty_mean": ev["test_uncertainty_mean"],
                   "test_floor_mean_law_median": ev["test_floor_mean_law_median"],
                   "test_spread_error_ratio": ev["test_spread_error_ratio"],
                   "test_spread_error_ratio_raw": ev["test_spread_error_ratio_raw"],
                   "uncertainty_error_spearman": ev["uncertainty_error_spearman_test"],
                   "uncertainty_error_spearman_floored": ev["uncertainty_error_spearman_floored_test"],
                   "uncertainty_error_spearman_candidates": spearman(scores, [c["error_median"] for c in cands]),
                   "md_seconds": md_seconds, "train_seconds": train_seconds}
        table = [{"stream_index": c["k"], "traj_id": c["run"].traj_id, **asdict(c["run"].spec), "score": c["score"],
                  "score_raw": c["score_raw"], "error_median": c["error_median"], "selected": j in pick}
                 for j, c in enumerate(cands)]
        save_ensemble(model, it_dir / "ensemble.pt", {"iteration": i, "strategy": loop.strategy, "seed": loop.seed,
                                                      "train": sorted(train_ids), "val": val_ids,
                                                      "spread_calibration": calibration})
        write_json(it_dir / "candidates.json", {"candidates": table, "dropped": dropped, "test": ev["per_trajectory"]})
        clean = {k: float(v) for k, v in metrics.items() if v is not None}
        mlflow.log_metrics(clean)
        mlflow.log_artifact(str(it_dir / "candidates.json"))
    mlflow.log_metrics(clean, step=int(metrics["n_queries"]))  # the parent: step series over queries
    selected = [pool[j] for j in pick]
    for j in pick:
        loop.graphs[cands[j]["run"].traj_id] = cands[j]["graphs"]
    return {"iteration": i, "metrics": metrics, "pool": list(pool), "scores": scores, "dropped": dropped,
            "selected": selected, "selected_ids": [cands[j]["run"].traj_id for j in pick],
            "pool_left": [k for k in pool if k not in selected], "stop": stop, "reached": reached}


def run_strategy(cfg: Config, strategy: str, initial_graphs_dir: str | Path, md_dir: str | Path,
                 graphs_dir: str | Path, work_dir: str | Path, progress: bool = True,
                 simulate: bool = True, seed: int | None = None) -> dict[str, Any]:
    """Run (or resume) one strategy's loop; return its summary (also written to ``work_dir/<strategy>/summary.json``).

    With ``simulate`` False the loop only reads prepared runs (dislomob.active.pool.prepare_al_data) and
    stops with reason ``stream_exhausted`` when the pool cannot be filled from them.
    """
    import mlflow

    loop = open_loop(cfg, strategy, initial_graphs_dir, md_dir, graphs_dir, work_dir, progress, simulate, seed)
    rec, ac = loop.record, cfg.active
    done = rec["iterations"]
    pool: list[int] = list(done[-1]["pool_left"]) if done else []
    with _mlflow(cfg, strategy, loop.seed, rec["parent_run_id"]) as parent:
        rec["parent_run_id"] = parent.info.run_id
        mlflow.log_params({"strategy": strategy, "seed": loop.seed, "pool_size": ac.pool_size, "select": ac.select,
                           "threshold": ac.threshold, "candidate_seed": ac.candidate_seed, "test_seed": ac.test_seed,
                           "test_trajectories": len(loop.test), "n_initial": loop.n_initial,
                           "calibrate_spread": ac.calibrate_spread})
        mlflow.set_tag("max_iterations", str(ac.max_iterations))  # a tag: a resumed loop may get a larger budget
        while rec["stopped"] is None:
            t0 = time.perf_counter()
            dropped, exhausted = fill_pool(loop, pool)
            md_seconds = rec.pop("pending_md_seconds", 0.0) + time.perf_counter() - t0
            if exhausted or not pool:
                rec["stopped"] = {"reason": "stream_exhausted", "reached": False, "iteration": len(done),
                                  "dropped": dropped}
                write_json(loop.home / RECORD, rec)
                break
            entry = run_iteration(loop, pool, dropped, md_seconds)
            stop, reached = entry.pop("stop"), entry.pop("reached")
            done.append(entry)
            pool = list(entry["pool_left"])
            if stop is not None:
                rec["stopped"] = {"reason": stop, "reached": reached, "iteration": entry["iteration"]}
            write_json(loop.home / RECORD, rec)
        summary = summarize(rec)
        mlflow.log_metrics({f"final_{k}": float(v) for k, v in summary.items() if isinstance(v, (int, float))})
        if done:
            mlflow.log_artifact(str(loop.home / f"iter_{len(done) - 1:03d}" / "ensemble.pt"), artifact_path="model")
    write_json(loop.home / "summary.json", summary)
    return summary


def _pick(strategy: str, scores: list[float], names: list[str], iteration: int, cfg: Config, seed: int) -> list[int]:
    """Pool positions to query: highest scores (active) or seeded random ones (passive)."""
    from dislomob.active.selection import random_selection, top_uncertainty

    n = min(cfg.active.select, len(scores))
    if strategy == "active":
        return top_uncertainty(scores, n, names=names)
    return random_selection(len(scores), n, [cfg.active.candidate_seed, seed, iteration], names=names)


def _reopen(record: dict, cfg: Config, strategy: str, seed: int) -> None:
    """A loop stopped by ``max_iterations`` continues when the budget grew (its last iteration selects now);
    one stopped by ``stream_exhausted`` tries again to fill its pool (more runs may exist now)."""
    stopped, its = record.get("stopped"), record["iterations"]
    if stopped and stopped["reason"] == "stream_exhausted":
        record["stopped"] = None
        return
    if not stopped or stopped["reason"] != "max_iterations" or cfg.active.max_iterations <= stopped["iteration"]:
        return
    last = its[-1]
    names = [f"stream {k}" for k in last["pool"]]
    pick = _pick(strategy, last["scores"], names, last["iteration"], cfg, seed)
    from dislomob.md.run import run_key

    last["selected"] = [last["pool"][j] for j in pick]
    last["selected_ids"] = [run_key(candidate(k, cfg.active.candidate_seed, cfg.active), cfg.md, cfg.material)
                            for k in last["selected"]]
    last["pool_left"] = [k for k in last["pool"] if k not in last["selected"]]
    record["stopped"] = None


def _run_of(k: int, cfg: Config, md_dir: str | Path, graphs_dir: str | Path) -> RunData:
    """The cached run of stream candidate k (already simulated and featurized by the pool fill)."""
    from dislomob.md.run import run_key

    spec = candidate(k, cfg.active.candidate_seed, cfg.active)
    key = run_key(spec, cfg.md, cfg.material)
    return RunData(spec, Path(md_dir) / f"{key}.h5", Path(graphs_dir) / f"{key}.pt", None)


def summarize(record: dict) -> dict[str, Any]:
    """Queries to threshold, iterations, reached, final test error and the learning curve of a record."""
    its = record["iterations"]
    stopped = record.get("stopped") or {}
    curve = [{k: it["metrics"].get(k) for k in CURVE_KEYS} for it in its]
    last = its[-1]["metrics"] if its else {}
    return {"queries_to_threshold": last.get("n_queries") if stopped.get("reached") else None,
            "iterations": len(its), "reached": bool(stopped.get("reached")), "stop_reason": stopped.get("reason"),
            "n_queries": last.get("n_queries"), "test_error_median": last.get("test_error_median"),
            "test_floor_mean_law_median": last.get("test_floor_mean_law_median"),
            "uncertainty_error_spearman": last.get("uncertainty_error_spearman"), "curve": curve}


def compare(summaries: dict[str, dict]) -> dict[str, Any]:
    """``metrics/active_learning.json``: per strategy its summary (without the curve) and the saving of
    active over passive in queries to threshold (percent), when both reached it."""
    out: dict[str, Any] = {s: {k: v for k, v in d.items() if k != "curve"} for s, d in summaries.items()}
    a, p = (summaries.get(s, {}).get("queries_to_threshold") for s in ("active", "passive"))
    out["saving_pct"] = (100.0 * (1.0 - a / p)) if a is not None and p else None
    return out
