"""Curated data that teaches curvature (issue 22): long dipoles and large shear loops, grown across sittings.

Two datasets, each with its params profile (MD protocol, cell, executor) and a fixed plan of conditions here:

- ``long_dipoles`` (pipelines/long_lines/params.yaml -> datasets/long_dipoles/md): dipoles with 12 nm lines, then
  the same conditions with 6 nm lines (the trend), over the characters 0, 35.3, 54.7, 70.5, 90 deg and their BCC
  mirror partners 109.5, 125.3, 144.7, 180 deg; per character ``PER_CHARACTER`` (T, stress) points of a scrambled
  Halton sequence over 100-1000 K x 0.1-1.0 GPa (a different stretch of it per character), 3 ps recorded.
- ``loops_large`` (pipelines/loops_large/params.yaml -> datasets/loops_large/md): shear loops in cells 25 nm along
  b, radii 3, 4 and 6 nm, loads around and above the measured critical stress (~1.2-1.3 GPa), 300 and 500 K, 5 ps.

The plan is ordered so that what is run first is most useful (12 nm before 6 nm; one loop per radius before more
loads). ``run`` simulates what the folder lacks, in plan order, through the profile's executor (local Parsl
workers, or Slurm with ``executor.kind: slurm``), stopping before it would start a run past ``--hours`` of wall time;
the run cache (files named by run key) makes it resumable and a rerun free. ``plan`` prints the plan with each
run's state and the estimated core-hours; ``report`` summarizes what exists (speeds in the crystal frame).

Usage:
  python benchmarks/bench_curvature.py plan [long_dipoles|loops_large]
  python benchmarks/bench_curvature.py run long_dipoles [--hours 2] [--limit N]
  python benchmarks/bench_curvature.py report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dislomob.config import Config, load_config
from dislomob.md.run import RunSpec, cached_run, run_key, should_run

ROOT = Path(__file__).resolve().parents[1]
CHARACTERS_DEG = (0.0, 35.26, 54.74, 70.53, 90.0, 109.47, 125.26, 144.74, 180.0)
PER_CHARACTER = 3
T_RANGE_K = (100.0, 1000.0)
STRESS_RANGE_GPA = (0.1, 1.0)
LINE_LENGTHS_NM = (12.0, 6.0)
LOOPS = (  # (radius nm, stress GPa, temperature K), most useful first
    (4.0, 1.5, 300.0), (4.0, 1.5, 500.0), (3.0, 1.75, 300.0), (6.0, 1.25, 300.0),
    (4.0, 1.25, 300.0), (6.0, 1.25, 500.0), (3.0, 1.75, 500.0), (4.0, 1.75, 500.0),
)
SEED = 2022
S_PER_ATOM_PS = 2.2e-3  # measured median cost on one core (benchmarks/md_sizing.py), for the plan's estimates


@dataclass(frozen=True)
class Planned:
    """One planned run: its spec and the profile config it runs with (cell, MD protocol)."""

    spec: RunSpec
    cfg: Config
    label: str

    @property
    def key(self) -> str:
        return run_key(self.spec, self.cfg.md, self.cfg.material)


def _halton(n: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    return qmc.Halton(d=2, scramble=True, seed=seed).random(n)


def long_dipole_plan() -> list[Planned]:
    """12 nm runs over every character, then the same conditions with 6 nm lines."""
    base = load_config(ROOT / "pipelines" / "long_lines" / "params.yaml")
    u = _halton(PER_CHARACTER * len(CHARACTERS_DEG), SEED)
    conds = []
    for i, angle in enumerate(CHARACTERS_DEG):
        for j in range(PER_CHARACTER):
            t, s = u[i * PER_CHARACTER + j]
            conds.append((angle, round(T_RANGE_K[0] + t * (T_RANGE_K[1] - T_RANGE_K[0])),
                          round(STRESS_RANGE_GPA[0] + s * (STRESS_RANGE_GPA[1] - STRESS_RANGE_GPA[0]), 3)))
    out = []
    for length in LINE_LENGTHS_NM:
        cfg = base.model_copy(update={"md": base.md.model_copy(update={"box": base.md.box.model_copy(
            update={"line_nm": length})})})
        for k, (angle, t_k, s_gpa) in enumerate(conds):
            spec = RunSpec(float(t_k), float(s_gpa), angle, "dipole", base.seed + k)
            out.append(Planned(spec, cfg, f"{length:g} nm, {angle:.1f} deg, {t_k:.0f} K, {s_gpa:.3f} GPa"))
    return out


def loop_plan() -> list[Planned]:
    """The large loops of ``LOOPS``, each with its radius in the loops_large profile's cell."""
    from dislomob.loop_profile import loop_config

    base = loop_config(load_config(ROOT / "pipelines" / "loops_large" / "params.yaml"))
    out = []
    for k, (radius, stress, t_k) in enumerate(LOOPS):
        cfg = base.model_copy(update={"md": base.md.model_copy(update={"loop": base.md.loop.model_copy(
            update={"radius_nm": radius})})})
        spec = RunSpec(t_k, stress, base.loops.angle_deg, "loop", base.seed + k)
        out.append(Planned(spec, cfg, f"loop r {radius:g} nm, {stress:g} GPa, {t_k:.0f} K"))
    return out


PLANS = {"long_dipoles": long_dipole_plan, "loops_large": loop_plan}


def folder(name: str) -> Path:
    return ROOT / "datasets" / name / "md"


def atoms_of(p: Planned) -> int:
    """BCC atoms of the planned run's cell (2 per a^3)."""
    box = p.cfg.md.loop if p.spec.geometry == "loop" else p.cfg.md.box
    return int(round(2e3 * box.glide_nm * box.line_nm * box.height_nm / p.cfg.material.lattice_a_angstrom ** 3))


def core_hours(p: Planned) -> float:
    md = p.cfg.md
    return S_PER_ATOM_PS * atoms_of(p) * (md.equilibrate_ps + md.settle_ps + md.duration_ps) / 3600.0


def plan_table(name: str) -> list[dict]:
    rows = []
    for p in PLANS[name]():
        c = cached_run(folder(name) / f"{p.key}.h5")
        rows.append({"key": p.key, "run": p.label, "state": c.state, "atoms": atoms_of(p),
                     "core_hours_est": round(core_hours(p), 3)})
    return rows


def run(name: str, hours: float, limit: int | None, progress: bool = True) -> dict:
    """Simulate the plan's missing runs in order, one batch per profile cell, until ``hours`` of wall time."""
    from dislomob.md.dispatch import run_batch

    t0 = time.monotonic()
    todo = [p for p in PLANS[name]() if should_run(cached_run(folder(name) / f"{p.key}.h5"))]
    if limit is not None:
        todo = todo[:limit]
    done: list[str] = []
    batch_s: list[float] = []
    while todo and (time.monotonic() - t0 + (float(np.median(batch_s)) if batch_s else 0.0)) / 3600.0 <= hours:
        cfg = todo[0].cfg
        workers = cfg.executor.workers if cfg.executor.kind == "local" else cfg.executor.slurm.runs_per_node
        batch = [p for p in todo if p.cfg == cfg][:workers]
        start = time.monotonic()
        result = run_batch([p.spec for p in batch], cfg, folder(name), progress=progress, md=[p.cfg.md for p in batch])
        batch_s.append(time.monotonic() - start)
        done += [str(x) for x in result.ran]
        todo = [p for p in todo if p not in batch]
    return {"dataset": name, "ran": done, "left": len(todo), "wall_h": (time.monotonic() - t0) / 3600.0}


def report() -> dict:
    """What each dataset holds: per run its state and, for dipoles, the lines' speed in the crystal frame."""
    from dislomob.md.analysis import dipole_symmetry
    from dislomob.md.trajectory import read_trajectory

    out = {}
    for name in PLANS:
        rows = plan_table(name)
        for r in rows:
            path = folder(name) / f"{r['key']}.h5"
            if r["state"] == "done" and name == "long_dipoles":
                s = dipole_symmetry(read_trajectory(path))
                r["speed_m_s"] = None if s is None else round(s.speed_m_s, 1)
        have = [r for r in rows if r["state"] == "done"]
        out[name] = {"planned": len(rows), "complete": len(have),
                     "core_hours_done_est": round(sum(r["core_hours_est"] for r in have), 2),
                     "core_hours_planned_est": round(sum(r["core_hours_est"] for r in rows), 2), "runs": rows}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan")
    p.add_argument("dataset", nargs="?", choices=sorted(PLANS))
    r = sub.add_parser("run")
    r.add_argument("dataset", choices=sorted(PLANS))
    r.add_argument("--hours", type=float, default=1e9, help="start no run that would end past this wall time")
    r.add_argument("--limit", type=int, default=None, help="at most this many runs")
    r.add_argument("--quiet", action="store_true")
    sub.add_parser("report")
    args = ap.parse_args(argv)
    if args.cmd == "plan":
        out = {n: plan_table(n) for n in ([args.dataset] if args.dataset else sorted(PLANS))}
    elif args.cmd == "run":
        out = run(args.dataset, args.hours, args.limit, progress=not args.quiet)
    else:
        out = report()
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
