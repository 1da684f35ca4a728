"""MD sizing: measured cost per atom-ps, and the core-hours, jobs and walltimes of the demo, the AL benchmark, a
12 nm-line profile and the paper's protocol.

Measured: every trajectory's ``wall_time_s`` (whole run: minimization, equilibration, settling, production, DXA)
over ``n_atoms`` x (equilibrate + settle + duration) ps of complete runs, one core per run (``md.threads: 1``), in the folders
given (default: the demo's ``data/*/md`` after ``make repro``, and ``datasets/al_benchmark/md``); the 1- vs 2-rank
cost comes from ``benchmarks/results/md_ranks.json`` (``bench_md_ranks.py``).

Extrapolated: a profile's cell (``md.box``, BCC: 2 atoms per a^3) times its MD length (ps) times the measured
median cost per atom-ps gives core-hours per run; runs = the initial grid + the AL campaign's MD (fixed test and
calibration runs, the first pool, one refill of ``select`` per further iteration, for ``max_iterations``) + the
evaluation's held-out runs where the profile has them. One run's hours are its core-hours over the cores of one
run (``executor.slurm.cores_per_run``), divided by the parallel efficiency measured at 2 ranks (an upper bound
on what more ranks keep); a Slurm block (one job) must hold at least one run: its suggested walltime is 1.5x
that, and a block runs further runs while its walltime lasts. Prints JSON; writes benchmarks/results/md_sizing.json.

Usage: python benchmarks/md_sizing.py [FOLDER ...]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dislomob.atomic import write_json
from dislomob.config import Config, load_config
from dislomob.md.trajectory import read_meta

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "md_sizing.json"
RANKS = ROOT / "benchmarks" / "results" / "md_ranks.json"
DEFAULT_FOLDERS = ("data/md", "data/al/md", "data/eval/md", "data/loops/md", "datasets/al_benchmark/md")
EQUILIBRATE_PS = 0.5  # every measured folder (demo, AL benchmark) equilibrates 0.5 ps; trajectories do not record it
PROFILES = {  # name: (params file, md.box override or None, evaluation runs)
    "demo": ("params.yaml", None, 3),
    "al_benchmark": ("pipelines/al_benchmark/params.yaml", None, 0),
    "long_lines_12nm": ("pipelines/long_lines/params.yaml", None, 3),
    "paper": ("pipelines/paper/params.yaml", None, 0),
}


def measured_cost(folders: list[Path]) -> dict:
    """Per folder and overall: runs, core-hours, and seconds per atom-ps on one core (median, quartiles)."""
    per, every = {}, []
    for folder in folders:
        costs, hours = [], 0.0
        for p in sorted(folder.glob("*.h5")):
            m = read_meta(p)
            if m.status != "ok" or not m.wall_time_s or not m.n_atoms:  # cut runs stop early
                continue
            ps = _md_ps_of(p, m)
            costs.append(m.wall_time_s / (m.n_atoms * ps))
            hours += m.wall_time_s / 3600.0
        if costs:
            per[str(folder)] = {"runs": len(costs), "core_hours": hours, "s_per_atom_ps_median": float(np.median(costs))}
            every += costs
    if not every:
        raise SystemExit(f"md_sizing: no trajectories in {', '.join(map(str, folders))}: run `make repro` first or name "
                         "folders")
    q = np.percentile(every, [25, 50, 75])
    return {"folders": per, "runs": len(every), "s_per_atom_ps": {"q25": q[0], "median": q[1], "q75": q[2]}}


def _md_ps_of(path: Path, meta) -> float:
    """The run's MD length, ps: equilibration (``EQUILIBRATE_PS``), settling and production."""
    return EQUILIBRATE_PS + meta.settle_ps + meta.duration_ps


def atoms(cfg: Config, box: dict | None = None) -> int:
    """BCC atoms of the dipole cell of ``cfg`` (or of ``box``, nm), 2 per cubic lattice cell."""
    b = box or cfg.md.box.model_dump()
    volume = b["glide_nm"] * b["line_nm"] * b["height_nm"] * 1e3  # Angstrom^3
    return int(round(2.0 * volume / cfg.material.lattice_a_angstrom ** 3))


def run_count(cfg: Config, evaluation_runs: int) -> dict:
    """Runs of a profile: grid, AL campaign (test + calibration + first pool + refills), evaluation."""
    d, a = cfg.dataset, cfg.active
    grid = len(d.temperatures_k) * len(d.stresses_gpa) * len(d.angles_deg)
    al = a.test_trajectories + a.calibration_trajectories + a.pool_size + a.select * a.max_iterations
    return {"grid": grid, "al": al, "evaluation": evaluation_runs, "total": grid + al + evaluation_runs}


def profile_sizing(name: str, params: str, box: dict | None, evaluation_runs: int, cost: float,
                   efficiency: float) -> dict:
    cfg = load_config(ROOT / params)
    n = atoms(cfg, box)
    ps = cfg.md.equilibrate_ps + cfg.md.settle_ps + cfg.md.duration_ps
    per_run_h = cost * n * ps / 3600.0
    runs = run_count(cfg, evaluation_runs)
    cores = cfg.executor.slurm.cores_per_run if cfg.executor.kind == "slurm" else cfg.md.threads
    wall_h = per_run_h / cores / (efficiency if cores > 1 else 1.0)
    return {"params": params, "box_nm": box or cfg.md.box.model_dump(), "atoms": n, "md_ps": ps, "runs": runs,
            "core_hours_per_run": per_run_h, "core_hours": per_run_h * runs["total"], "cores_per_run": cores,
            "hours_per_run": wall_h, "suggested_block_walltime": _walltime(1.5 * wall_h)}


def _walltime(hours: float) -> str:
    minutes = max(10, int(math.ceil(hours * 60 / 10.0)) * 10)
    d, rest = divmod(minutes, 24 * 60)
    return f"{d}-{rest // 60:02d}:{rest % 60:02d}:00" if d else f"{rest // 60:02d}:{rest % 60:02d}:00"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", type=Path)
    args = ap.parse_args(argv)
    folders = args.folders or [ROOT / f for f in DEFAULT_FOLDERS if (ROOT / f).is_dir()]
    measured = measured_cost(folders)
    ranks = json.loads(RANKS.read_text()) if RANKS.exists() else None
    # parallel efficiency at 2 ranks on the larger cell (speedup / 2), capped at 1; 1 when not measured
    efficiency = min(1.0, float(ranks["cells"]["4x atoms"]["speedup_2_ranks"]) / 2.0) if ranks else 1.0
    cost = measured["s_per_atom_ps"]["median"]
    out = {"machine": f"{platform.node()} ({platform.machine()})", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
           "measured": measured, "parallel_efficiency_2_ranks": efficiency,
           "profiles": {k: profile_sizing(k, *v, cost, efficiency) for k, v in PROFILES.items()}}
    write_json(RESULTS, out)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
