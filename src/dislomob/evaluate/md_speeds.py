"""Steady glide speeds of the straight lines of MD dipole runs, the points beside the interpretability curves.

The speed of a run is the mean |v| (m/s) of its straight lines, each fitted over the recorded frames by
dislomob.md.analysis.summarize (the recorded part starts after ``md.settle_ps`` under load); runs that failed,
were cut, are loops or hold no straight line are skipped with the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MDSpeed:
    """One MD run: its id (file stem), character (deg), temperature (K), target and measured resolved shear
    stress (GPa), mean straight-line speed (m/s) and the number of lines it averages."""

    traj_id: str
    angle_deg: float
    temperature_k: float
    stress_gpa: float
    measured_stress_gpa: float | None
    speed_m_per_s: float
    n_lines: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_speed(path: str | Path) -> tuple[MDSpeed | None, str | None]:
    """(speed of the run in ``path``, None) or (None, why it has none)."""
    from dislomob.md.analysis import summarize
    from dislomob.md.trajectory import read_trajectory

    p = Path(path)
    try:
        traj = read_trajectory(p)
    except Exception as err:  # empty, truncated or junk files: h5py and pydantic raise many kinds
        return None, f"unreadable ({type(err).__name__})"
    meta = traj.meta
    if meta.status != "ok":
        return None, f"status {meta.status}"
    if meta.geometry != "dipole":
        return None, f"geometry {meta.geometry}"
    speeds = [abs(s.velocity_m_s) for s in summarize(traj) if not s.is_loop and math.isfinite(s.velocity_m_s)]
    if not speeds:
        return None, "no straight line with a fitted speed"
    return MDSpeed(p.stem, float(meta.angle_deg), float(meta.temperature_k), float(meta.stress_gpa),
                   meta.measured_stress_gpa, float(sum(speeds) / len(speeds)), len(speeds)), None


def md_speeds(md_dirs: list[str | Path]) -> tuple[list[MDSpeed], dict[str, str]]:
    """(speeds of every usable ``*.h5`` run in ``md_dirs`` sorted by id, {run: why skipped}); missing folders
    are skipped."""
    found, skipped = {}, {}
    for d in md_dirs:
        for f in sorted(Path(d).glob("*.h5")) if Path(d).is_dir() else []:
            speed, why = run_speed(f)
            if speed is None:
                skipped[f.stem] = why
            else:
                found[f.stem] = speed
    return [found[k] for k in sorted(found)], skipped
