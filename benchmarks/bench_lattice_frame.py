"""Line speeds in the lab frame and in the crystal's frame (issue 20): dipole asymmetry, common mode, replicas.

A dipole's two lines are lattice-inversion partners under one load: relative to the crystal they move with
equal and opposite speeds. This script measures how far the trajectories are from that, in the lab frame (the
crystal's position ignored) and in the crystal's frame (``dislomob.md.crystal_frame``), and runs the replicas
that check the after-the-fact correction of old trajectories and give the data's replica scatter.

Usage:
  python benchmarks/bench_lattice_frame.py stats DIR [DIR ...]   # asymmetry / common mode, lab vs crystal frame
  python benchmarks/bench_lattice_frame.py correct DIR           # give old dipole files the inferred crystal position
  python benchmarks/bench_lattice_frame.py replicas              # MD: 6 conditions x 3 seeds (resumable)
  python benchmarks/bench_lattice_frame.py report                # replicas: speed spread, corrected vs re-simulated,
                                                                 # replica floor; mean-law floors of the AL benchmark
  python benchmarks/bench_lattice_frame.py rollout-floors        # replicas: mean-law and replica floors over time
                                                                 # (rollout distances), added to the results file

Speeds in m/s; ``asymmetry`` = ||v1| - |v2|| / mean |v|; ``common mode`` = |v1 + v2| / 2. Prints JSON;
``report`` also writes benchmarks/results/lattice_frame.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from dislomob.atomic import write_json
from dislomob.config import load_config
from dislomob.md.analysis import dipole_symmetry
from dislomob.md.inferred_frame import correct_file
from dislomob.md.run import RunSpec, run_key, simulate
from dislomob.md.trajectory import Trajectory, read_trajectory

AL_PARAMS = "pipelines/al_benchmark/params.yaml"
AL_MD = Path("datasets/al_benchmark/md")
REPLICA_MD = Path("datasets/replicas/md")
RESULTS = Path("benchmarks/results/lattice_frame.json")
# (AL benchmark run, why): every character, low and high T and stress; each rerun with its own seed and two more
REPLICA_RUNS = {
    "1f893bf7ea74fb81": "screw 0 deg, 115 K, 0.37 GPa (low T)",
    "c58c1dbb3e743906": "screw 180 deg, 382 K, 0.59 GPa",
    "c430ab7e5b52f5bf": "mixed 35.3 deg, 232 K, 0.89 GPa",
    "053ef23e5ef624da": "mixed 54.7 deg, 721 K, 0.12 GPa (low stress)",
    "163d4ef55bf83f7d": "mixed 125.3 deg, 707 K, 0.96 GPa (high T and stress)",
    "8ab61b46f13e65c4": "edge 90 deg, 171 K, 0.99 GPa",
    "798573f3b7f1f8d4": "edge 90 deg, 500 K, 0.25 GPa (high T, low stress: the demo grid's largest common mode)",
}
EXTRA_SEEDS = (11, 12)
SPARE_SEEDS = (13, 14, 15, 16)  # run when a condition has fewer than 3 usable replicas (a run cut by DXA, say)


def lab_frame(traj: Trajectory) -> Trajectory:
    """The trajectory with its crystal position dropped: what the lab frame shows."""
    meta = traj.meta.model_copy(update={"lattice_reference": None})
    return Trajectory(meta, [replace(f, lattice_u=None) for f in traj.frames])


def _stats(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    asym = np.array([r["asymmetry"] for r in rows])
    cm = np.array([r["common_mode_m_s"] for r in rows])
    frac = np.array([r["common_mode_m_s"] / r["speed_m_s"] for r in rows])
    return {"n": len(rows), "asymmetry_median": float(np.median(asym)), "common_mode_m_s_median": float(np.median(cm)),
            "common_mode_m_s_p90": float(np.quantile(cm, 0.9)), "common_mode_m_s_max": float(cm.max()),
            "common_mode_fraction_median": float(np.median(frac)), "common_mode_fraction_max": float(frac.max())}


def folder_stats(folder: Path) -> dict:
    """Asymmetry and common mode of every dipole in ``folder``, lab frame and crystal frame, by speed class."""
    out: dict = {"folder": str(folder)}
    rows = {"lab": [], "crystal": []}
    refs: dict[str, int] = {}
    for p in sorted(folder.glob("*.h5")):
        traj = read_trajectory(p)
        refs[str(traj.meta.lattice_reference)] = refs.get(str(traj.meta.lattice_reference), 0) + 1
        for name, t in (("lab", lab_frame(traj)), ("crystal", traj)):
            s = dipole_symmetry(t)
            if s is not None:
                rows[name].append({"key": p.stem, "speed_m_s": s.speed_m_s, "common_mode_m_s": s.common_mode_m_s,
                                   "asymmetry": s.asymmetry})
    out["lattice_reference"] = refs
    for name, rs in rows.items():
        out[name] = {"all": _stats(rs), "above_500_m_s": _stats([r for r in rs if r["speed_m_s"] > 500]),
                     "300_to_500_m_s": _stats([r for r in rs if 300 < r["speed_m_s"] <= 500]),
                     "below_300_m_s": _stats([r for r in rs if r["speed_m_s"] <= 300])}
    return out


def _one(args: tuple[RunSpec, str]) -> str:
    spec, out_dir = args
    cfg = load_config(AL_PARAMS)
    return str(simulate(spec, cfg.md, cfg.material, out_dir))


def _usable(path: Path) -> bool:
    return path.exists() and dipole_symmetry(read_trajectory(path)) is not None


def replica_specs(with_spares: bool = True) -> list[tuple[str, int, RunSpec]]:
    """(source run, seed, spec) of every replica: the source run's own seed first, then ``EXTRA_SEEDS``, then
    ``SPARE_SEEDS`` already simulated, or (if ``with_spares``) needed while fewer than 3 earlier ones are usable."""
    cfg = load_config(AL_PARAMS)
    out = []
    for key in REPLICA_RUNS:
        m = read_trajectory(AL_MD / f"{key}.h5").meta
        specs = [(key, seed, RunSpec(m.temperature_k, m.stress_gpa, m.requested_angle_deg, seed=seed))
                 for seed in (m.seed, *EXTRA_SEEDS)]
        for seed in SPARE_SEEDS:
            spare = RunSpec(m.temperature_k, m.stress_gpa, m.requested_angle_deg, seed=seed)
            usable = sum(_usable(REPLICA_MD / f"{run_key(sp, cfg.md, cfg.material)}.h5") for _, _, sp in specs)
            if (with_spares and usable < 3) or (REPLICA_MD / f"{run_key(spare, cfg.md, cfg.material)}.h5").exists():
                specs.append((key, seed, spare))
        out += specs
    return out


def run_replicas(workers: int) -> dict:
    """Simulate the replicas that ``REPLICA_MD`` lacks (the run cache makes a rerun free); spares where runs were cut."""
    REPLICA_MD.mkdir(parents=True, exist_ok=True)
    for attempt in range(1 + len(SPARE_SEEDS)):
        jobs = [(spec, str(REPLICA_MD)) for _, _, spec in replica_specs(with_spares=attempt > 0)]
        with ProcessPoolExecutor(workers) as pool:
            paths = list(pool.map(_one, jobs))
    return {"n_runs": len(paths), "folder": str(REPLICA_MD)}


def _graphs(traj: Trajectory, cfg, name: str) -> list:
    """The graphs of one trajectory (featurized in memory with ``cfg``)."""
    from dislomob.features.featurize import featurize_trajectory
    from dislomob.features.graphs import to_heterodata

    return [to_heterodata(r) for r in featurize_trajectory(traj, cfg, name).records]


def replica_floors(paths: list[Path], cfg) -> dict:
    """Mean-law floor of each replica and the replica floor: each replica scored with each other's line means."""
    from dislomob.model.floors import mean_law_errors, rigid_line_errors, trajectory_line_means

    graphs = {p.stem: _graphs(read_trajectory(p), cfg, p.stem) for p in paths}
    graphs = {k: g for k, g in graphs.items() if g}
    means = {k: trajectory_line_means(g)[k] for k, g in graphs.items()}
    own = {k: float(np.nanmedian(mean_law_errors(g))) for k, g in graphs.items()}
    cross = [float(np.nanmedian(rigid_line_errors(graphs[a], {a: means[b]}))) for a in graphs for b in graphs if a != b]
    return {"mean_law_floor_median": own, "replica_floor_medians": cross,
            "replica_floor_median": float(np.median(cross)) if cross else None}


def rollout_floors(paths: list[Path], cfg) -> dict:
    """Rollout floors over time for one condition's replicas: each replica's own mean-law curve, and each replica's
    MD against its start lines moved at another replica's mean line velocities (median over ordered pairs)."""
    from dislomob.ddd.rollout import md_line_velocities, rollout_errors

    horizon = cfg.md.duration_ps
    vel = {p.stem: md_line_velocities(p, cfg, horizon) for p in paths}
    runs = [rollout_errors({}, p, cfg, horizon_ps=horizon, progress=False,
                           replica_velocities={k: v for k, v in vel.items() if k != p.stem}) for p in paths]
    n = min(len(r["times_ps"]) for r in runs)
    own = np.array([[np.nan if x is None else x for x in r["mean_law_relative_error"][:n]] for r in runs])
    cross = np.array([[np.nan if x is None else x for x in c[:n]] for r in runs for c in r["replica_relative_error"].values()])
    return {"times_ps": runs[0]["times_ps"][:n],
            "mean_law_median": [float(x) for x in np.nanmedian(own, axis=0)],
            "replica_median": [float(x) for x in np.nanmedian(cross, axis=0)] if len(cross) else None,
            "replica_pairs": len(cross)}


def report_rollout_floors() -> dict:
    """Rollout floors over time per replica condition, merged into the results file under ``rollout_floors``."""
    cfg = load_config(AL_PARAMS)
    out = {}
    for key, why in REPLICA_RUNS.items():
        paths = [REPLICA_MD / f"{run_key(spec, cfg.md, cfg.material)}.h5"
                 for _, _, spec in (r for r in replica_specs() if r[0] == key)]
        usable = [p for p in paths if p.exists() and dipole_symmetry(read_trajectory(p)) is not None]
        if len(usable) >= 2:
            out[why] = rollout_floors(usable, cfg)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["rollout_floors"] = out
    write_json(RESULTS, results)
    return out


def al_floors() -> dict:
    """Mean-law floor medians of the AL benchmark's fixed test runs and of all its runs, lab and crystal frame."""
    from dislomob.active.candidates import test_set
    from dislomob.model.floors import mean_law_errors

    cfg = load_config(AL_PARAMS)
    test_keys = {run_key(s, cfg.md, cfg.material) for s in test_set(cfg.active.test_trajectories, cfg.active.test_seed, cfg.active)}
    out = {}
    for frame in ("lab", "crystal"):
        per: dict[str, np.ndarray] = {}
        for p in sorted(AL_MD.glob("*.h5")):
            traj = read_trajectory(p)
            if traj.meta.status == "failed":
                continue
            gs = _graphs(lab_frame(traj) if frame == "lab" else traj, cfg, p.stem)
            if gs:
                per[p.stem] = mean_law_errors(gs)
        test = np.concatenate([v for k, v in per.items() if k in test_keys])
        every = np.concatenate(list(per.values()))
        out[frame] = {"test_runs": int(sum(k in test_keys for k in per)), "floor_median_test": float(np.nanmedian(test)),
                      "all_runs": len(per), "floor_median_all": float(np.nanmedian(every))}
    return out


def report() -> dict:
    """Per condition: lattice-frame speeds of every replica, their spread, and the corrected source run's speeds."""
    cfg = load_config(AL_PARAMS)
    conds = []
    for key, why in REPLICA_RUNS.items():
        src = read_trajectory(AL_MD / f"{key}.h5")
        reps = []
        for _, seed, spec in (r for r in replica_specs() if r[0] == key):
            path = REPLICA_MD / f"{run_key(spec, cfg.md, cfg.material)}.h5"
            if not path.exists():
                continue
            t = read_trajectory(path)
            s = dipole_symmetry(t)
            lab = dipole_symmetry(lab_frame(t))
            reps.append({"seed": seed, "file": path.name, "status": t.meta.status,
                         "speed_m_s": None if s is None else s.speed_m_s,
                         "common_mode_m_s": None if s is None else s.common_mode_m_s,
                         "lab_common_mode_m_s": None if lab is None else lab.common_mode_m_s,
                         "wall_time_s": t.meta.wall_time_s})
        speeds = np.array([r["speed_m_s"] for r in reps if r["speed_m_s"] is not None])
        floors = replica_floors([REPLICA_MD / r["file"] for r in reps if r["speed_m_s"] is not None], cfg)
        corrected = dipole_symmetry(src)
        same_seed = next((r for r in reps if r["seed"] == src.meta.seed), None)
        conds.append({
            "source": key, "condition": why, "replicas": reps,
            "speed_mean_m_s": float(speeds.mean()) if len(speeds) else None,
            "speed_spread_rel": float(speeds.std(ddof=1) / speeds.mean()) if len(speeds) > 1 else None,
            **floors,
            "corrected_speed_m_s": None if corrected is None else corrected.speed_m_s,
            "corrected_vs_resimulated_rel": (None if corrected is None or same_seed is None or same_seed["speed_m_s"] is None
                                             else abs(corrected.speed_m_s - same_seed["speed_m_s"]) / same_seed["speed_m_s"]),
        })
    out = {"machine": f"{platform.node()} ({platform.processor() or platform.machine()}, 2 cores)", "conditions": conds,
           "replica_folder": folder_stats(REPLICA_MD), "al_benchmark_folder": folder_stats(AL_MD),
           "al_benchmark_floors": al_floors()}
    write_json(RESULTS, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stats")
    s.add_argument("folders", nargs="+", type=Path)
    c = sub.add_parser("correct")
    c.add_argument("folder", type=Path)
    r = sub.add_parser("replicas")
    r.add_argument("--workers", type=int, default=2)
    sub.add_parser("report")
    sub.add_parser("rollout-floors")
    args = ap.parse_args(argv)
    if args.cmd == "stats":
        out = [folder_stats(f) for f in args.folders]
    elif args.cmd == "correct":
        files = sorted(args.folder.glob("*.h5"))
        done, refused = [], {}
        for p in files:
            try:
                if correct_file(p):
                    done.append(p.name)
            except ValueError as err:  # a loop, or a dipole whose lines cannot both be followed: left stale
                refused[p.name] = str(err)
        out = {"folder": str(args.folder), "n_files": len(files), "n_corrected": len(done), "not_corrected": refused}
    elif args.cmd == "replicas":
        out = run_replicas(args.workers)
    elif args.cmd == "rollout-floors":
        out = report_rollout_floors()
    else:
        out = report()
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
