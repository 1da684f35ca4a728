"""The evaluate stage's multi-step rollout part: both laws rolled out from MD frames, errors against time, figures.

:func:`rollout_hook` returns the stage hook (dislomob.evaluate.stage.RolloutHook): for every rollout trajectory
(the ``eval_data`` stage's long held-out dipoles, dislomob.evaluate.rollout_runs; with the stage's loop inputs
also the loop test trajectories, bucket ``loop``, rolled out with the loop-trained ensemble and its fitted law,
and every loop with the evaluated dipole-trained ensemble, ``dipole_law_on_loops``) the PI-GNN and the fitted law
are rolled out through the DDD API (dislomob.ddd.rollout.rollout_errors: own non-singular stress + applied,
remeshing, periodic cell) and compared with the MD lines; it writes ``rollout_error.csv`` (relative error per
trajectory, law and time, with the rigid-translation floor), ``rollout_error.png`` (error against time per
character bucket) and ``rollout_overlay.png`` (MD and rollout lines at a few times) into the stage's folder and
returns the per-trajectory and per-bucket numbers for the metrics. Relative error = line distance to the MD at
time t / distance of the MD lines at t from where they started (dimensionless; paper Fig. 6 target < 0.1).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dislomob.evaluate.figures import LAW_STYLE, _plt, _save

LAWS = ("pignn", "baseline")


def _at(times: list[float], values: list[float | None], t: float) -> float | None:
    """The value at the compared time nearest to ``t`` (ps) when it is within half a frame, else None."""
    if not times:
        return None
    k = int(np.argmin(np.abs(np.asarray(times) - t)))
    return values[k] if abs(times[k] - t) < 0.051 else None


def trajectory_row(r: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one :func:`dislomob.ddd.rollout.rollout_errors` result: per law the relative error
    at the end of the horizon and at 1 ps, its mean over the compared times, and the cost per step (s)."""
    out = {"traj_id": r["traj_id"], "bucket": r["bucket"], "angle_deg": r["angle_deg"],
           "temperature_k": r["temperature_k"], "stress_gpa": r["stress_gpa"], "horizon_ps": r["horizon_ps"],
           "tracked_horizon_ps": r["tracked_horizon_ps"],
           "md_travel_end_angstrom": r["md_travel_angstrom"][-1] if r["md_travel_angstrom"] else None,
           "rigid_floor_end": r["rigid_relative_error"][-1] if r["rigid_relative_error"] else None,
           "mean_law_floor_end": r["mean_law_relative_error"][-1] if r.get("mean_law_relative_error") else None}
    for law, v in r["laws"].items():
        errs = [e for e in v["relative_error"] if e is not None and math.isfinite(e)]
        out[f"{law}_error_end"] = v["relative_error"][-1] if v["relative_error"] else None
        out[f"{law}_error_1ps"] = _at(r["times_ps"], v["relative_error"], 1.0)
        out[f"{law}_error_mean"] = float(np.mean(errs)) if errs else None
        out[f"{law}_wall_s_per_step"] = v["wall_s_per_step"]
    return out


def error_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Long-format rows (trajectory, bucket, time ps, law errors, rigid and mean-law floors) for the CSV and `dvc plots`."""
    rows = []
    for r in results:
        for i, t in enumerate(r["times_ps"]):
            rows.append({"traj_id": r["traj_id"], "bucket": r["bucket"], "time_ps": t,
                         **{f"{law}_relative_error": r["laws"][law]["relative_error"][i] for law in r["laws"]},
                         "rigid_floor": r["rigid_relative_error"][i],
                         "mean_law_floor": r["mean_law_relative_error"][i] if r.get("mean_law_relative_error") else None,
                         "md_distance_angstrom": r["md_distance_angstrom"][i]})
    return rows


def error_figure(results: Sequence[dict[str, Any]], path: str | Path,
                 loop_title: str = "test loops, loop-trained laws") -> Path:
    """Relative rollout error against time, one panel per character bucket (the loops' titled ``loop_title``): every
    trajectory of each law (thin), the rigid-translation floor (grey dotted) and, for dipoles, the mean-law floor
    (grey dashed: lines moved at their mean velocity), with the paper's 10% line."""
    plt = _plt()
    buckets = sorted({r["bucket"] for r in results})
    fig, axes = plt.subplots(1, max(1, len(buckets)), figsize=(4.6 * max(1, len(buckets)), 3.6), squeeze=False,
                             constrained_layout=True)
    for ax, bucket in zip(axes[0], buckets):
        for r in (r for r in results if r["bucket"] == bucket):
            t = np.asarray(r["times_ps"])
            for law, v in r["laws"].items():
                label, ls, marker = LAW_STYLE[law]
                y = np.array([np.nan if e is None else e for e in v["relative_error"]], dtype=float)
                ax.plot(t, y, ls, marker=marker, ms=2.5, lw=1.2, label=f"{label} ({r['traj_id'][:6]})")
            floor = np.array([np.nan if e is None else e for e in r["rigid_relative_error"]], dtype=float)
            ax.plot(t, floor, ":", color="0.5", lw=1.0, label=f"rigid MD floor ({r['traj_id'][:6]})")
            if r.get("mean_law_relative_error") and r["bucket"] != "loop":  # a loop's mean translation is ~0
                mean_law = np.array([np.nan if e is None else e for e in r["mean_law_relative_error"]], dtype=float)
                ax.plot(t, mean_law, "--", color="0.6", lw=1.0, label=f"mean-law floor ({r['traj_id'][:6]})")
        ax.axhline(0.1, color="k", lw=0.6, alpha=0.5)
        ax.set_yscale("log")
        ax.set_xlabel("time after the start frame (ps)")
        ax.set_ylabel("line distance to MD / MD distance from start")
        ax.set_title(loop_title if bucket == "loop" else f"{bucket} dipoles")
        ax.legend(fontsize=6.5)
    return _save(fig, Path(path))


def overlay_figure(results: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """MD lines against the rollouts of both laws at the kept times, one row per dipole trajectory and for the loops
    the least and the most loaded one, projected on the glide plane of the MD cell (x: glide direction, y: line
    direction; the cell's z is the plane normal)."""
    plt = _plt()
    shown = [r for r in results if r["overlay"]["times_ps"] and r["bucket"] != "loop"]
    loops = sorted((r for r in results if r["overlay"]["times_ps"] and r["bucket"] == "loop"),
                   key=lambda r: (r["stress_gpa"], r["traj_id"]))
    shown += loops[:1] + loops[1:][-1:]
    ncol = max((len(r["overlay"]["times_ps"]) for r in shown), default=1)
    fig, axes = plt.subplots(max(1, len(shown)), ncol, figsize=(3.4 * ncol, 3.0 * max(1, len(shown))),
                             squeeze=False, constrained_layout=True)
    colors = {"md": "k", "pignn": "tab:blue", "baseline": "tab:orange"}
    for row, r in zip(axes, shown):
        axes_idx = (0, 1)
        for ax, k in zip(row, range(len(r["overlay"]["times_ps"]))):
            for who in ("md", *[law for law in LAWS if law in r["overlay"]]):
                for j, line in enumerate(r["overlay"][who][k]):
                    p = np.asarray(line)
                    label = ("MD" if who == "md" else LAW_STYLE[who][0]) if j == 0 else None
                    ax.plot(p[:, axes_idx[0]], p[:, axes_idx[1]], "-" if who == "md" else "--", color=colors[who],
                            lw=1.3, label=label)
            ax.set_title(f"{r['bucket']} {r['traj_id'][:6]}, t = {r['overlay']['times_ps'][k]:.1f} ps", fontsize=8)
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xlabel("glide x (A)", fontsize=7)
            ax.set_ylabel("line y (A)", fontsize=7)
            ax.tick_params(labelsize=7)
        row[0].legend(fontsize=7)
    return _save(fig, Path(path))


def bucket_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per character bucket and law: median over trajectories of the end-of-horizon and time-mean errors."""
    out: dict[str, Any] = {}
    for bucket in sorted({r["bucket"] for r in rows}):
        sel = [r for r in rows if r["bucket"] == bucket]
        out[bucket] = {"n_trajectories": len(sel), "horizon_ps": min(r["horizon_ps"] for r in sel)}
        for law in LAWS:
            for key in ("error_end", "error_mean"):
                vals = [r[f"{law}_{key}"] for r in sel if r.get(f"{law}_{key}") is not None]
                out[bucket][f"{law}_{key}_median"] = float(np.median(vals)) if vals else None
        for key in ("rigid_floor_end", "mean_law_floor_end"):
            floors = [r[key] for r in sel if r.get(key) is not None]
            out[bucket][f"{key}_median"] = float(np.median(floors)) if floors else None
    return out


def rollout_hook(trajectories: Sequence[str | Path], progress: bool = True):
    """The evaluate stage's rollout hook over the trajectory files ``trajectories`` (module docstring)."""
    from dislomob.ddd.law import MobilityLaw
    from dislomob.ddd.rollout import rollout_errors
    from dislomob.errors import DislomobError, InputFileError

    paths = [Path(p) for p in trajectories]

    def hook(ctx) -> dict[str, Any]:
        import numba

        from dislomob.evaluate.stage import write_csv

        if not paths:
            raise InputFileError("no rollout trajectory: run `dislomob eval-data` (the eval_data stage) first")
        numba.set_num_threads(1)  # ~10-node networks: thread start-up costs more than the sums (measured 10x)
        run_cfg = ctx.model.cfg.model_copy(update={"rollout": ctx.cfg.rollout})
        laws = {"pignn": MobilityLaw(ctx.model.model, run_cfg), "baseline": MobilityLaw(ctx.baseline, run_cfg)}
        jobs = [(p, laws, run_cfg) for p in paths]
        loops = ctx.extra.get("loops")
        if loops is not None:  # the loop-trained ensemble and its fitted law on the loops it never saw
            loop_cfg = loops["cfg"].model_copy(update={"rollout": ctx.cfg.rollout})
            loop_laws = {"pignn": MobilityLaw(loops["model"], loop_cfg),
                         "baseline": MobilityLaw(loops["baseline"], loop_cfg)}
            jobs += [(loops["md_dir"] / f"{t}.h5", loop_laws, loop_cfg) for t in loops["test_ids"]]
        results, failed = [], {}
        for p, job_laws, job_cfg in jobs:
            try:
                results.append(rollout_errors(job_laws, p, job_cfg, progress=progress))
            except (DislomobError, ValueError) as err:  # recorded; the other trajectories go on
                failed[p.stem] = f"{type(err).__name__}: {err}"
        dipole_law_on_loops = {}
        if loops is not None:  # the evaluated (dipole-trained) ensemble rolled out on every loop
            for t in loops["all_ids"]:
                try:
                    r = rollout_errors({"pignn": laws["pignn"]}, loops["md_dir"] / f"{t}.h5", run_cfg, progress=False)
                    dipole_law_on_loops[t] = {"stress_gpa": r["stress_gpa"], "temperature_k": r["temperature_k"],
                                              "error_end": r["laws"]["pignn"]["relative_error"][-1],
                                              "horizon_ps": r["horizon_ps"], "failed": None}
                except (DislomobError, ValueError) as err:
                    dipole_law_on_loops[t] = {"failed": f"{type(err).__name__}: {err}"}
        if not results:
            raise InputFileError(f"no rollout trajectory could be rolled out: {failed}")
        rows = [trajectory_row(r) for r in results]
        write_csv(ctx.out_dir / "rollout_error.csv", error_rows(results))
        write_csv(ctx.out_dir / "rollout_trajectories.csv", rows)
        error_figure(results, ctx.out_dir / "rollout_error.png")
        overlay_figure(results, ctx.out_dir / "rollout_overlay.png")
        out = {"trajectories": rows, "by_bucket": bucket_summary(rows), "failed": failed,
               "dt_ps": ctx.cfg.rollout.dt_ps, "scheme": ctx.cfg.rollout.scheme,
               "max_move_angstrom": ctx.cfg.rollout.max_move_angstrom}
        if loops is not None:
            out["dipole_law_on_loops"] = {
                "n_loops": len(dipole_law_on_loops),
                "n_diverged": sum(v["failed"] is not None for v in dipole_law_on_loops.values()),
                "loops": dipole_law_on_loops}
        return out

    return hook
