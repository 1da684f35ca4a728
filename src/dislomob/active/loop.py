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

Each iteration is an MLflow child run of the strategy's parent run (tags ``strategy``, ``seed``), with
the candidates' parameters and scores as a table artifact; the parent carries the same metrics as step
series over the number of queries. A loop killed at any moment continues after its last completed
iteration: the record names the pool, the training set and the checkpoint; MD runs and graphs are
cached by content. Lengths in Angstrom, T in K, stresses in GPa.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dislomob.active.candidates import candidate, test_set
from dislomob.active.pool import RunData, prepare_runs, stream_budget
from dislomob.atomic import write_json
from dislomob.config import Config

RECORD = "record.json"


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


def initial_split(traj_ids: list[str], cfg: Config) -> dict[str, list[str]]:
    """Training and validation trajectories of the initial grid: the train stage's stratified split, whose
    test part joins training (active learning is scored on its own fixed test set)."""
    from dislomob.train.buckets import bucket_of  # noqa: F401 (groups come with the graphs)
    from dislomob.train.data import split_by_trajectory

    parts = split_by_trajectory(traj_ids, cfg.train.split, cfg.seed)
    return {"train": sorted(parts["train"] + parts["test"]), "val": sorted(parts["val"])}


def _graphs_of(paths: list[Path]) -> dict[str, list]:
    from dislomob.features.graphs import load_graphs

    return {p.stem: load_graphs(p) for p in paths}


def trajectory_stats(model, graphs: list, floor: float) -> tuple[list[float], float]:
    """(single-step relative errors of the graphs, relative spread score) of one trajectory."""
    import torch
    from torch_geometric.loader import DataLoader

    from dislomob.active.scoring import relative_spread
    from dislomob.model.loss import relative_error
    from dislomob.model.predict import predict

    preds = predict(model, graphs)
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    err = relative_error(batch, torch.cat([p.mean for p in preds]).to(batch["node"].pos.dtype))
    return err.tolist(), float(np.mean([relative_spread(p, floor) for p in preds]))


def evaluate_on_test(model, test: dict[str, list], floor: float) -> dict[str, Any]:
    """Median single-step relative error over all graphs of the fixed test set, the trajectories' mean
    spread score, and the Spearman correlation of spread and median error over trajectories."""
    per_traj, errors = {}, []
    for tid, graphs in sorted(test.items()):
        err, unc = trajectory_stats(model, graphs, floor)
        errors += err
        per_traj[tid] = {"error_median": float(np.median(err)), "uncertainty": unc}
    unc = [v["uncertainty"] for v in per_traj.values()]
    return {"test_error_median": float(np.median(errors)),
            "test_uncertainty_mean": float(np.mean(unc)),
            "uncertainty_error_spearman_test": spearman(unc, [v["error_median"] for v in per_traj.values()]),
            "per_trajectory": per_traj}


def _read_record(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        from dislomob.errors import InputFileError

        raise InputFileError(f"{path}: unreadable active-learning record ({err}); move it away to start over") from None


def _mlflow(cfg: Config, strategy: str, parent_id: str | None):
    """Open (or reopen) the strategy's parent run in ``active.experiment``; runs of dead processes end KILLED."""
    import mlflow

    from dislomob.tracking import end_orphaned_runs, ended_on_exit, owner_tags, tracking_setup

    end_orphaned_runs(tracking_setup(cfg.train.tracking_uri, cfg.active.experiment))
    if parent_id is not None:
        run = mlflow.start_run(run_id=parent_id)
        mlflow.set_tags(owner_tags())
        return ended_on_exit(run)
    return ended_on_exit(mlflow.start_run(run_name=f"{strategy}-seed{cfg.seed}",
                                          tags={"strategy": strategy, "seed": str(cfg.seed), **owner_tags()}))


def run_strategy(cfg: Config, strategy: str, initial_graphs_dir: str | Path, md_dir: str | Path,
                 graphs_dir: str | Path, work_dir: str | Path, progress: bool = True,
                 simulate: bool = True) -> dict[str, Any]:
    """Run (or resume) one strategy's loop; return its summary (also written to ``work_dir/<strategy>/summary.json``).

    With ``simulate`` False the loop only reads prepared runs (dislomob.active.pool.prepare_al_data) and
    stops with reason ``stream_exhausted`` when the pool cannot be filled from them.
    """
    import mlflow

    from dislomob.model.ensemble import save_ensemble
    from dislomob.tracking import ended_on_exit, owner_tags
    from dislomob.train.data import load_graph_dir
    from dislomob.train.stage import train_ensemble

    if strategy not in ("active", "passive"):
        raise ValueError(f"strategy={strategy!r} not allowed: 'active' or 'passive'")
    ac = cfg.active
    home = Path(work_dir) / strategy
    home.mkdir(parents=True, exist_ok=True)
    record = _read_record(home / RECORD) or {"strategy": strategy, "seed": cfg.seed, "iterations": [],
                                             "next_stream_index": 0, "stopped": None, "parent_run_id": None}
    initial = load_graph_dir(initial_graphs_dir)
    by_traj: dict[str, list] = {}
    for g in initial:
        by_traj.setdefault(str(g.traj_id), []).append(g)
    record.setdefault("split", initial_split(sorted(by_traj), cfg))
    split = record["split"]
    t_md = time.perf_counter()
    test_runs = prepare_runs(test_set(ac.test_trajectories, ac.test_seed, ac), cfg, md_dir, graphs_dir, progress,
                             simulate)
    record["test_dropped"] = {r.traj_id: r.reason for r in test_runs if not r.usable}
    test = _graphs_of([r.graph_path for r in test_runs if r.usable])
    if not test:
        raise RuntimeError(f"no usable test trajectory among {len(test_runs)}: {record['test_dropped']}")
    md_seconds = time.perf_counter() - t_md
    done = record["iterations"]
    _reopen(record, cfg, strategy)
    train_ids = list(split["train"]) + [t for it in done for t in it["selected_ids"]]
    pool: list[int] = list(done[-1]["pool_left"]) if done else []
    extra: dict[str, list] = {}  # graphs of selected candidates
    for it in done:
        extra.update(_graphs_of([Path(graphs_dir) / f"{t}.pt" for t in it["selected_ids"]]))
    with _mlflow(cfg, strategy, record["parent_run_id"]) as parent:
        record["parent_run_id"] = parent.info.run_id
        mlflow.log_params({"strategy": strategy, "pool_size": ac.pool_size, "select": ac.select,
                           "threshold": ac.threshold, "candidate_seed": ac.candidate_seed, "test_seed": ac.test_seed,
                           "test_trajectories": len(test), "n_initial_train": len(split["train"])})
        mlflow.set_tag("max_iterations", str(ac.max_iterations))  # a tag: a resumed loop may get a larger budget
        while record["stopped"] is None:
            i = len(done)
            it_dir = home / f"iter_{i:03d}"
            # the iteration's child run gets the training curves (Lightning logs to the active run) and the table
            with ended_on_exit(mlflow.start_run(run_name=f"iter_{i:03d}", nested=True,
                                                tags={**owner_tags(), "iteration": str(i)})):
                graphs = [g for t in train_ids + split["val"] for g in (by_traj.get(t) or extra[t])]
                tc = cfg.train.model_copy(update={"warm_start": str(home / f"iter_{i - 1:03d}" / "ensemble.pt") if i else None})
                t0 = time.perf_counter()
                res = train_ensemble(graphs, tc, cfg.seed + i, it_dir, progress=progress,
                                     parts={"train": train_ids, "val": split["val"]})
                train_seconds = time.perf_counter() - t0
                model = res.model
                ev = evaluate_on_test(model, test, ac.noise_floor_angstrom)
                # fill the pool from the stream; drop unusable runs with their reasons
                dropped: dict[str, str] = {}
                t_md = time.perf_counter()
                exhausted = False
                while len(pool) < ac.pool_size and not exhausted:
                    need = ac.pool_size - len(pool)
                    ks = list(range(record["next_stream_index"], record["next_stream_index"] + need))
                    if not simulate:
                        ks = [k for k in ks if k < stream_budget(cfg)]  # what al-data prepared
                        exhausted = not ks
                    record["next_stream_index"] += len(ks)
                    for k, run in zip(ks, prepare_runs([candidate(k, ac.candidate_seed, ac) for k in ks], cfg, md_dir,
                                                       graphs_dir, progress, simulate)):
                        if run.usable:
                            pool.append(k)
                        else:
                            dropped[str(k)] = run.reason or "unusable"
                if not pool:
                    raise RuntimeError(f"no usable candidate to score at iteration {i}: {dropped}")
                md_seconds += time.perf_counter() - t_md
                runs = {k: _run_of(k, cfg, md_dir, graphs_dir) for k in pool}
                cand_graphs = _graphs_of([runs[k].graph_path for k in pool])
                stats = [trajectory_stats(model, cand_graphs[runs[k].traj_id], ac.noise_floor_angstrom) for k in pool]
                cand_err, scores = [float(np.median(e)) for e, _ in stats], [u for _, u in stats]
                n_queries = sum(len(it["selected_ids"]) for it in done)
                reached = max(scores) < ac.threshold
                stop = ("threshold" if reached else "max_iterations" if i >= ac.max_iterations
                        else "stream_exhausted" if len(pool) < ac.select else None)
                pick = [] if stop is not None else _pick(strategy, scores, [runs[k].traj_id for k in pool], i, cfg)
                metrics = {"n_queries": n_queries, "n_train_trajectories": len(train_ids),
                           "uncertainty_rel_max": float(max(scores)), "uncertainty_rel_mean": float(np.mean(scores)),
                           "test_error_median": ev["test_error_median"], "test_uncertainty_mean": ev["test_uncertainty_mean"],
                           "uncertainty_error_spearman": ev["uncertainty_error_spearman_test"],
                           "uncertainty_error_spearman_candidates": spearman(scores, cand_err),
                           "md_seconds": md_seconds, "train_seconds": train_seconds}
                table = [{"stream_index": k, "traj_id": runs[k].traj_id, **asdict(runs[k].spec), "score": s,
                          "error_median": e, "selected": j in pick} for j, (k, s, e) in enumerate(zip(pool, scores, cand_err))]
                save_ensemble(model, it_dir / "ensemble.pt", {"iteration": i, "strategy": strategy,
                                                              "train": sorted(train_ids), "val": split["val"]})
                write_json(it_dir / "candidates.json", {"candidates": table, "dropped": dropped,
                                                        "test": ev["per_trajectory"]})
                clean = {k: float(v) for k, v in metrics.items() if v is not None}
                mlflow.log_metrics(clean)
                mlflow.log_artifact(str(it_dir / "candidates.json"))
            mlflow.log_metrics(clean, step=int(metrics["n_queries"]))  # the parent: step series over queries
            selected = [pool[j] for j in pick]
            done.append({"iteration": i, "metrics": metrics, "pool": pool, "scores": scores, "dropped": dropped,
                         "selected": selected, "selected_ids": [runs[k].traj_id for k in selected],
                         "pool_left": [k for k in pool if k not in selected]})
            train_ids += [runs[k].traj_id for k in selected]
            extra.update({runs[k].traj_id: cand_graphs[runs[k].traj_id] for k in selected})
            pool = [k for k in pool if k not in selected]
            md_seconds = 0.0
            if stop is not None:
                record["stopped"] = {"reason": stop, "reached": reached, "iteration": i}
            write_json(home / RECORD, record)
        summary = summarize(record)
        mlflow.log_metrics({f"final_{k}": float(v) for k, v in summary.items() if isinstance(v, (int, float))})
        final = home / f"iter_{len(done) - 1:03d}" / "ensemble.pt"
        mlflow.log_artifact(str(final), artifact_path="model")
    write_json(home / "summary.json", summary)
    return summary


def _pick(strategy: str, scores: list[float], names: list[str], iteration: int, cfg: Config) -> list[int]:
    """Pool positions to query: highest scores (active) or seeded random ones (passive)."""
    from dislomob.active.selection import random_selection, top_uncertainty

    n = min(cfg.active.select, len(scores))
    if strategy == "active":
        return top_uncertainty(scores, n, names=names)
    return random_selection(len(scores), n, [cfg.active.candidate_seed, cfg.seed, iteration], names=names)


def _reopen(record: dict, cfg: Config, strategy: str) -> None:
    """A loop stopped by ``max_iterations`` continues when the budget grew: its last iteration selects now."""
    stopped, its = record.get("stopped"), record["iterations"]
    if not stopped or stopped["reason"] != "max_iterations" or cfg.active.max_iterations <= stopped["iteration"]:
        return
    last = its[-1]
    names = [f"stream {k}" for k in last["pool"]]
    pick = _pick(strategy, last["scores"], names, last["iteration"], cfg)
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
    curve = [{k: it["metrics"][k] for k in ("n_queries", "test_error_median", "uncertainty_rel_max",
                                             "uncertainty_rel_mean", "uncertainty_error_spearman")} for it in its]
    last = its[-1]["metrics"] if its else {}
    return {"queries_to_threshold": last.get("n_queries") if stopped.get("reached") else None,
            "iterations": len(its), "reached": bool(stopped.get("reached")), "stop_reason": stopped.get("reason"),
            "n_queries": last.get("n_queries"), "test_error_median": last.get("test_error_median"),
            "uncertainty_error_spearman": last.get("uncertainty_error_spearman"), "curve": curve}


def compare(summaries: dict[str, dict]) -> dict[str, Any]:
    """``metrics/active_learning.json``: per strategy its summary (without the curve) and the saving of
    active over passive in queries to threshold (percent), when both reached it."""
    out: dict[str, Any] = {s: {k: v for k, v in d.items() if k != "curve"} for s, d in summaries.items()}
    a, p = (summaries.get(s, {}).get("queries_to_threshold") for s in ("active", "passive"))
    out["saving_pct"] = (100.0 * (1.0 - a / p)) if a is not None and p else None
    return out
