"""The `simulate` stage: the initial grid of MD runs from params, run through Parsl, indexed in JSON."""

from __future__ import annotations

import itertools
from pathlib import Path

from dislomob.atomic import write_json
from dislomob.config import Config
from dislomob.md.analysis import summarize
from dislomob.md.dispatch import run_batch
from dislomob.md.run import RunSpec
from dislomob.md.trajectory import read_trajectory


def initial_specs(cfg: Config) -> list[RunSpec]:
    """Every (T, stress, angle) of the dataset grid, angles snapped to available characters, seeded."""
    d = cfg.dataset
    specs = []
    for i, (t, s, a) in enumerate(itertools.product(d.temperatures_k, d.stresses_gpa, d.angles_deg)):
        specs.append(RunSpec(temperature_k=t, stress_gpa=s, angle_deg=a, geometry=cfg.md.geometry, seed=cfg.seed + i))
    return specs


def simulate_dataset(cfg: Config, out_dir: str | Path, progress: bool = True) -> dict:
    """Run the initial dataset into ``out_dir`` and write ``out_dir/index.json``; returns the index."""
    out_dir = Path(out_dir)
    specs = initial_specs(cfg)
    paths = run_batch(specs, cfg, out_dir, progress=progress)
    runs = []
    for spec, path in zip(specs, paths):
        traj = read_trajectory(path)
        m = traj.meta
        runs.append(
            {
                "file": path.name,
                "key": m.key,
                "status": m.status,
                "failure_reason": m.failure_reason,
                "temperature_k": m.temperature_k,
                "stress_gpa": m.stress_gpa,
                "angle_deg": m.angle_deg,
                "requested_angle_deg": spec.angle_deg,
                "n_frames": len(traj.frames),
                "n_atoms": m.n_atoms,
                "passing_stress_gpa": m.passing_stress_gpa,
                "measured_stress_gpa": m.measured_stress_gpa,
                "wall_time_s": m.wall_time_s,
                "velocities_m_s": [ln.velocity_m_s for ln in summarize(traj, skip_ps=min(1.0, m.duration_ps / 4))],
            }
        )
    index = {
        "profile": cfg.profile,
        "n_runs": len(runs),
        "n_ok": sum(r["status"] == "ok" for r in runs),
        "n_cut": sum(r["status"] == "cut" for r in runs),
        "n_failed": sum(r["status"] == "failed" for r in runs),
        "runs": runs,
    }
    write_json(out_dir / "index.json", index)
    return index
