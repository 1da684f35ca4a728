"""The ``evaluate`` stage: the PI-GNN ensemble (``evaluate.model``) and the phenomenological law fitted to the same
training trajectories, scored side by side, tracked in MLflow.

1. single step (dislomob.evaluate.single_step): per-graph errors of every named evaluation (``dipole``: the
   ``evaluate.test_sets`` trajectories the ensemble never saw; with ``loops`` also ``loop``, ``dipole_on_loops``
   and ``dipole_on_all_loops``, dislomob.evaluate.loops), binned by angle, temperature and stress
   (bins.py), medians with bootstrap intervals over test trajectories and the paired difference (stats.py);
2. interpretability (interpret.py): F/B, E, speed and displacement against the character angle at several
   stresses and temperatures, with the MD straight-line speeds (md_speeds.py) as points, and each MD run's speed
   against the straight-dipole prediction at its conditions;
3. physics checks (physics.py) on both laws; 4. figures (figures.py); 5. an optional ``rollout`` hook (the
   multi-step DDD rollout, dislomob.ddd.rollout) whose result joins the metrics.

Writes ``<evaluate.out_dir>/`` (PNGs, CSV plot data, physics.json) and the metrics JSON, atomically.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dislomob.atomic import remove_stale_temps, write_bytes, write_json
from dislomob.config import Config
from dislomob.errors import InputFileError
from dislomob.evaluate import figures
from dislomob.evaluate.bins import bin_errors, covering_edges
from dislomob.evaluate.interpret import CurveGrid, curve_rows, law_components, make_probe
from dislomob.evaluate.loops import LoopInputs, loop_evaluations
from dislomob.evaluate.md_speeds import md_speeds
from dislomob.evaluate.models import EvaluatedModel, fit_law, load_evaluated_model
from dislomob.evaluate.physics import (edge_faster_than_screw, energy_largest_near_screw,
                                       speed_rises_with_stress)
from dislomob.evaluate.single_step import LAWS, Evaluation, StepErrors, single_step_errors
from dislomob.evaluate.stats import bootstrap_medians
from dislomob.evaluate.test_sets import by_trajectory, load_test_set, unseen


@dataclass(frozen=True)
class StageContext:
    """What a hook (e.g. the multi-step rollout) gets: the params, the evaluated ensemble (``model.model``, with the
    config it was trained with, ``model.cfg``), the fitted law and its parameters (``baseline_fit``, the fields of
    dislomob.model.phenomenological.BaselineFit), the test trajectories per evaluation, their MD files (id -> .h5 where one
    exists) and the output folder it may write figures and data into (logged to MLflow with the rest)."""

    cfg: Config
    model: EvaluatedModel
    baseline: Any
    baseline_fit: dict[str, float]
    test_trajectories: dict[str, list[str]]
    md_files: dict[str, Path]
    out_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)


RolloutHook = Callable[[StageContext], dict[str, Any]]


def _clean(o: Any) -> Any:
    """JSON-ready: NaN and infinities as None, numpy scalars as Python numbers, recursively."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return float(o) if math.isfinite(float(o)) else None
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows (same keys) as a CSV file, atomically; lists become ';'-joined text, None an empty field."""
    buf = io.StringIO()
    keys = list(rows[0]) if rows else []
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v) for k, v in r.items()})
    write_bytes(path, buf.getvalue().encode())


def _graph_pool(graph_dirs: list[Path]) -> dict[str, list]:
    """Every graph of the given folders (missing or empty folders skipped) by trajectory."""
    from dislomob.train.data import load_graph_dir

    pool: dict[str, list] = {}
    for d in graph_dirs:
        if d.is_dir() and any(d.glob("*.pt")):
            pool.update(by_trajectory(load_graph_dir(d)))
    return pool


def _test_graphs(cfg: Config, em: EvaluatedModel, pool: dict[str, list], train_dir: Path, al_md_dir: Path,
                 al_graphs_dir: Path) -> tuple[dict[str, list], dict[str, Any]]:
    """Unseen test graphs by trajectory over ``evaluate.test_sets``, and per set what was kept and dropped."""
    merged: dict[str, list] = {}
    info: dict[str, Any] = {}
    for name in cfg.evaluate.test_sets:
        kept, dropped = unseen(load_test_set(name, cfg, pool, train_dir, al_md_dir, al_graphs_dir), em.seen_ids)
        merged.update(kept)
        info[name] = {"trajectories": sorted(kept), "dropped_seen": dropped}
    if not merged:
        raise InputFileError(f"every test trajectory of evaluate.test_sets={cfg.evaluate.test_sets} was seen by the "
                             f"{em.kind} ensemble in training: {info}")
    return merged, info


def single_step_section(errors: StepErrors, cfg: Config) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(metrics of one evaluation: counts, medians with intervals in percent and Angstrom, bins; bin rows by key)."""
    ec = cfg.evaluate
    bins = {"angle": bin_errors(errors, "angle", ec.angle_bin_edges_deg),
            "temperature": bin_errors(errors, "temperature",
                                      covering_edges(ec.temperature_bin_edges_k, errors.temperature_k)),
            "stress": bin_errors(errors, "stress", covering_edges(ec.stress_bin_edges_gpa, errors.stress_gpa))}
    out: dict[str, Any] = {"n_graphs": errors.n_graphs, "n_trajectories": len(errors.trajectories),
                           "trajectories": errors.trajectories}
    for unit, series in (("pct", errors.percent), ("angstrom", errors.absolute_angstrom)):
        iv = bootstrap_medians({law: series[law] for law in LAWS}, errors.traj, [("pignn", "baseline")],
                               ec.bootstrap_resamples, ec.seed, ec.interval)
        out[f"error_{unit}"] = {k: v.as_dict() for k, v in iv.items()}
    if errors.floor_percent is not None and np.isfinite(errors.floor_percent).any():
        ok = np.isfinite(errors.floor_percent)
        out["floor_mean_law_pct"] = bootstrap_medians({"floor": errors.floor_percent[ok]}, errors.traj[ok], [],
                                                      ec.bootstrap_resamples, ec.seed, ec.interval)["floor"].as_dict()
    for by, rows in bins.items():
        out[f"by_{by}"] = {f"{r['low']:g}-{r['high']:g}": {"n_graphs": r["n_graphs"], "n_trajectories": r["n_trajectories"],
                                                           **{f"{law}_error_{u}_median": r[f"{law}_error_{u}_median"]
                                                              for law in LAWS for u in ("pct", "angstrom")}}
                           for r in rows}
    return out, bins


def md_parity(md: list, model: Any, baseline: Any, cfg: Config, seen: list[str] = ()
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each MD run's straight-line speed beside both laws' straight-dipole speeds at its (angle, stress, T), and
    whether the ensemble trained on the run (``seen``); metrics: median relative speed error per law over all runs
    and over the runs it never saw, with their numbers."""
    if not md:
        return [], {"n_runs": 0, "n_runs_unseen": 0}
    probes = [make_probe(cfg, m.angle_deg, m.stress_gpa, m.temperature_k) for m in md]
    pred = {"pignn": law_components(model, probes, cfg).speed_m_per_s,
            "baseline": law_components(baseline, probes, cfg).speed_m_per_s}
    was_seen = np.array([m.traj_id in set(seen) for m in md])
    rows = [{**m.as_dict(), "seen_in_training": bool(was_seen[i]),
             **{f"{law}_speed_m_per_s": float(pred[law][i]) for law in LAWS}} for i, m in enumerate(md)]
    v_md = np.array([m.speed_m_per_s for m in md])
    out: dict[str, Any] = {"n_runs": len(md), "n_runs_unseen": int((~was_seen).sum())}
    for law in LAWS:
        rel = np.abs(pred[law] - v_md) / np.maximum(np.abs(v_md), 1e-9)
        out[f"{law}_speed_rel_error_median"] = float(np.median(rel))
        out[f"{law}_speed_rel_error_median_unseen"] = float(np.median(rel[~was_seen])) if (~was_seen).any() else None
    return rows, out


def physics_section(laws: dict[str, Any], errors: StepErrors, grid: CurveGrid, cfg: Config) -> dict[str, Any]:
    """The three checks of dislomob.evaluate.physics for every law, at the test set's conditions."""
    from dislomob.model.consistency import demo_characters

    conds = sorted(set(zip(np.round(errors.temperature_k, 3).tolist(), np.round(errors.stress_gpa, 4).tolist())))
    chars = demo_characters(cfg)
    out: dict[str, Any] = {}
    for name, law in laws.items():
        by_t = {t: sorted(set(cfg.evaluate.stresses_gpa) | {s for tt, s in conds if tt == t}) for t, _ in conds}
        rise = speed_rises_with_stress(law, by_t, chars, cfg)
        checks = [edge_faster_than_screw(law, conds, cfg), rise,
                  energy_largest_near_screw(law, list(grid.temperatures_k), grid.reference_stress_gpa,
                                            list(grid.angles_deg), cfg)]
        out[name] = {c.name: c.as_dict() for c in checks}
    return out


def _flat_numbers(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested dict as ``a.b.c`` keys (MLflow metric names); booleans as 0/1."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_numbers(v, key + "."))
        elif isinstance(v, bool):
            out[key] = float(v)
        elif isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[key] = float(v)
    return out


def _grid(cfg: Config) -> CurveGrid:
    ec = cfg.evaluate
    n = int(round(180.0 / ec.angle_step_deg))
    angles = tuple(sorted(set(float(round(a, 6)) for a in np.linspace(0.0, 180.0, n + 1))))
    return CurveGrid(angles, tuple(sorted(ec.stresses_gpa)), tuple(sorted(ec.temperatures_k)),
                     ec.reference_temperature_k, ec.reference_stress_gpa)


def evaluate_stage(cfg: Config, metrics_path: str | Path = "metrics/evaluate.json", graphs_dir: str | Path | None = None,
                   register_dir: str | Path = "models/register", train_dir: str | Path | None = None,
                   al_md_dir: str | Path = "data/al/md", al_graphs_dir: str | Path = "data/al/graphs",
                   md_dir: str | Path | None = None, rollout: RolloutHook | None = None,
                   loops: LoopInputs | None = None, track: bool = True) -> dict[str, Any]:
    """Run the stage (module docstring); return the metrics written to ``metrics_path``."""
    import torch

    from dislomob.tracking import end_orphaned_runs, ended_on_exit, owner_tags, tracking_setup

    t0 = time.perf_counter()
    torch.set_num_threads(cfg.train.threads)
    ec = cfg.evaluate
    out_dir = Path(ec.out_dir)
    train_dir = Path(train_dir or cfg.train.model_dir)
    graphs_dir, md_dir = Path(graphs_dir or cfg.features.out_dir), Path(md_dir or cfg.dataset.out_dir)
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[f"{name}_s"] = round(now - since, 3)
        return now

    em = load_evaluated_model(cfg, ec.model, register_dir, train_dir)
    run_cfg = em.cfg
    pool = _graph_pool([graphs_dir, Path(al_graphs_dir)])
    missing = [t for t in em.train_ids if t not in pool]
    if missing:
        raise InputFileError(f"training trajectories {missing} of {em.path} have no graphs in {graphs_dir} or "
                             f"{al_graphs_dir}: the fitted law needs them")
    t = time.perf_counter()
    baseline, fit = fit_law([g for tid in em.train_ids for g in pool[tid]], cfg.train.baseline_steps)
    t = lap("baseline_fit", t)
    test, sets_info = _test_graphs(cfg, em, pool, train_dir, Path(al_md_dir), Path(al_graphs_dir))
    evaluations = [Evaluation("dipole", em.model, baseline, [g for tid in sorted(test) for g in test[tid]])]
    labels = {"dipole": f"{em.kind} ensemble"}
    if loops is not None:
        loop_evs, loops_info = loop_evaluations(loops, em.model, baseline)
        evaluations += loop_evs
        labels.update(loop="loop-trained ensemble", dipole_on_loops=f"{em.kind} (dipole-trained) ensemble",
                      dipole_on_all_loops=f"{em.kind} (dipole-trained) ensemble")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    metrics: dict[str, Any] = {"model": {"kind": em.kind, **em.provenance, "train_trajectories": len(em.train_ids)},
                               "baseline_fit": asdict(fit), "test_sets": sets_info, "single_step": {}}
    if loops is not None:
        metrics["loops"] = loops_info
    all_errors: dict[str, StepErrors] = {}
    for ev in evaluations:
        errors = single_step_errors(ev)
        all_errors[ev.name] = errors
        section, bins = single_step_section(errors, cfg)
        metrics["single_step"][ev.name] = section
        for by, rows in bins.items():
            write_csv(out_dir / f"errors_{ev.name}_by_{by}.csv", rows)
        write_csv(out_dir / f"errors_{ev.name}_graphs.csv",
                  [{"traj_id": errors.traj[i], "angle_deg": errors.angle_deg[i], "temperature_k": errors.temperature_k[i],
                    "stress_gpa": errors.stress_gpa[i], "reference_angstrom": errors.reference_angstrom[i],
                    **{f"{law}_error_angstrom": errors.absolute_angstrom[law][i] for law in LAWS},
                    **{f"{law}_error_pct": errors.percent[law][i] for law in LAWS}} for i in range(errors.n_graphs)])
        figures.error_bins_figure(bins, f"single-step error, {ev.name} test set ({errors.n_graphs} graphs, "
                                        f"{len(errors.trajectories)} trajectories; {labels[ev.name]})",
                                  out_dir / f"errors_{ev.name}.png")
    figures.interval_figure({n: s["error_pct"] for n, s in metrics["single_step"].items()}, out_dir / "intervals.png")
    t = lap("single_step", t)

    grid = _grid(cfg)
    laws = {"pignn": em.model, "baseline": baseline}
    rows = [r for name, law in laws.items() for r in curve_rows(law, name, grid, run_cfg)]
    md, skipped = md_speeds([md_dir, Path(al_md_dir)])
    parity_rows, parity = md_parity(md, em.model, baseline, run_cfg, em.seen_ids)
    metrics["md_speeds"] = {**parity, "skipped": skipped}
    write_csv(out_dir / "curves.csv", rows)
    ref = [r for r in rows if r["sweep"] == "stress" and abs(r["stress_gpa"] - grid.reference_stress_gpa) < 1e-9]
    if not ref:
        ref = [r for r in rows if r["sweep"] == "temperature" and abs(r["temperature_k"] - grid.reference_temperature_k) < 1e-9]
    wide: dict[float, dict[str, Any]] = {}
    for r in ref:
        row = wide.setdefault(r["angle_deg"], {"angle_deg": r["angle_deg"]})
        for k in ("f_over_b_m_per_s", "energy_ev", "speed_m_per_s", "displacement_angstrom"):
            row[f"{r['law']}_{k}"] = r[k]
    write_csv(out_dir / "curves_reference.csv", [wide[a] for a in sorted(wide)])
    write_csv(out_dir / "md_speeds.csv", parity_rows)
    md_points = [m.as_dict() for m in md]
    figures.interpretability_figure(rows, md_points, grid, run_cfg.features.dt_ps, out_dir / "interpretability.png")
    if parity_rows:
        figures.md_parity_figure(parity_rows, out_dir / "md_speeds.png")
    t = lap("interpretability", t)

    physics = physics_section(laws, all_errors["dipole"], grid, run_cfg)
    write_json(out_dir / "physics.json", _clean(physics))
    metrics["physics"] = {law: {name: {k: c[k] for k in ("passed", "n_passed", "n", "worst")} for name, c in checks.items()}
                          for law, checks in physics.items()}
    t = lap("physics", t)
    if rollout is not None:
        ids = sorted({t for e in all_errors.values() for t in e.trajectories})
        files = {t: d / f"{t}.h5" for d in (Path(al_md_dir), md_dir) for t in ids if (d / f"{t}.h5").is_file()}
        extra: dict[str, Any] = {}
        if loops is not None:
            loop_ev = next(ev for ev in evaluations if ev.name == "loop")
            extra["loops"] = {"model": loop_ev.model, "baseline": loop_ev.baseline, "cfg": loops.cfg,
                              "md_dir": Path(loops.cfg.dataset.out_dir), "test_ids": loops_info["test_trajectories"],
                              "all_ids": loops_info["all_trajectories"]}
        ctx = StageContext(cfg, em, baseline, asdict(fit), {n: e.trajectories for n, e in all_errors.items()}, files,
                           out_dir, extra)
        metrics["rollout"] = rollout(ctx)
        t = lap("rollout", t)
    metrics["timings"] = timings
    metrics["stage_wall_s"] = round(time.perf_counter() - t0, 3)
    metrics = _clean(metrics)
    if track:
        import mlflow

        end_orphaned_runs(tracking_setup(cfg.train.tracking_uri, ec.experiment))
        with ended_on_exit(mlflow.start_run(run_name=f"evaluate-{em.kind}", tags=owner_tags())):
            mlflow.log_params({**{f"evaluate.{k}": str(v) for k, v in ec.model_dump().items()},
                               **{f"model.{k}": str(v) for k, v in em.provenance.items()}, "seed": cfg.seed})
            mlflow.log_metrics(_flat_numbers({k: v for k, v in metrics.items() if k != "test_sets"}))
            mlflow.log_artifacts(str(out_dir), artifact_path="evaluate")
            metrics["mlflow_run_id"] = mlflow.active_run().info.run_id
    remove_stale_temps(Path(metrics_path).parent)
    write_json(metrics_path, metrics)
    return metrics
