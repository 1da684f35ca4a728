"""How long a shear loop of the pipeline's loop dataset can be recorded before it meets its periodic images.

Reads the `loop_md` stage's trajectories (params `loops.md_dir`) and prints per run: the loop's extent along
the glide direction x (= b, where the edge parts bulge) and along the line direction y at the first and last
recorded frame (Angstrom), the gap to its image along x (cell length - extent), the growth rate of the x extent
over the last 0.4 ps (Angstrom/ps; the loops still accelerate, so the rate only grows), the time at which that
rate closes the gap (an upper bound), and what a 5 ps record would need at that rate: the cell length along x and
the atoms and CPU time of one run at the run's own measured CPU seconds per atom per ps (lower bounds).

Usage: .venv/bin/python benchmarks/loop_extent.py [--params params.yaml] [--horizon-ps 5]
       (writes benchmarks/results/loop_extent.json)
"""

from __future__ import annotations

import argparse
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dislomob.atomic import write_json
from dislomob.config import load_config
from dislomob.md.trajectory import read_trajectory

RESULTS = Path(__file__).resolve().parent / "results" / "loop_extent.json"


def loop_extents(path: Path) -> tuple[dict, list[tuple[float, float, float]]]:
    """Metadata of one loop run and (time ps, x extent A, y extent A) of its largest closed loop per frame."""
    traj = read_trajectory(path)
    rows = []
    for frame in traj.frames:
        loops = [line for line in frame.lines if line.closed_loop]
        if loops:
            pts = max(loops, key=lambda line: len(line.points)).points
            ext = pts.max(0) - pts.min(0)
            rows.append((float(frame.time_ps), float(ext[0]), float(ext[1])))
    return {"meta": traj.meta, "cell_x": float(traj.frames[-1].cell[0, 0])}, rows


def run_summary(path: Path, horizon_ps: float, window_ps: float = 0.4) -> dict:
    """Extents, gap to the image and what a ``horizon_ps`` record needs, for one loop trajectory."""
    info, rows = loop_extents(path)
    meta, cell_x = info["meta"], info["cell_x"]
    t, ex, ey = (np.array(c) for c in zip(*rows))
    late = t >= t[-1] - window_ps - 1e-9
    rate = float(np.polyfit(t[late], ex[late], 1)[0])
    start = float(t[0])
    gap = cell_x - float(ex[-1])
    needed_x = float(ex[-1]) + rate * max(0.0, start + horizon_ps - float(t[-1]))
    cpu_per_atom_ps = meta.wall_time_s / (meta.n_atoms * (meta.settle_ps + meta.duration_ps))
    atoms = meta.n_atoms * max(1.0, needed_x / cell_x)
    return {"key": meta.key, "temperature_k": meta.temperature_k, "stress_gpa": meta.stress_gpa, "status": meta.status,
            "cell_x_angstrom": cell_x, "first": rows[0], "last": rows[-1], "gap_x_angstrom": gap,
            "x_rate_angstrom_per_ps": rate, "meets_image_by_ps": float(t[-1]) + gap / rate if rate > 0 else None,
            "cell_x_for_horizon_angstrom": needed_x, "atoms_for_horizon": int(atoms),
            "cpu_s_for_horizon": atoms * cpu_per_atom_ps * (meta.settle_ps + horizon_ps)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--horizon-ps", type=float, default=5.0, help="record length wanted (ps after the first frame)")
    args = ap.parse_args()
    md_dir = Path(load_config(args.params).loops.md_dir)
    paths = sorted(md_dir.glob("*.h5"))
    if not paths:
        raise SystemExit(f"no loop trajectories in {md_dir}: run `dvc repro loop_md` first")
    runs = [run_summary(p, args.horizon_ps) for p in paths]
    print(f"{'run':16} {'T K':>5} {'GPa':>5} {'status':6} {'x extent A (t ps)':>24} {'gap A':>6} {'dx/dt A/ps':>10} "
          f"{'meets image ps':>14} {'cell x for 5 ps':>15} {'CPU min':>8}")
    for r in runs:
        meets = "-" if r["meets_image_by_ps"] is None else f"{r['meets_image_by_ps']:.1f}"
        print(f"{r['key']:16} {r['temperature_k']:5.0f} {r['stress_gpa']:5.2f} {r['status']:6} "
              f"{r['first'][1]:6.1f} ({r['first'][0]:.1f}) -> {r['last'][1]:6.1f} ({r['last'][0]:.1f}) "
              f"{r['gap_x_angstrom']:6.1f} {r['x_rate_angstrom_per_ps']:10.1f} {meets:>14} "
              f"{r['cell_x_for_horizon_angstrom']:13.0f} A {r['cpu_s_for_horizon'] / 60:8.1f}")
    write_json(RESULTS, {"horizon_ps": args.horizon_ps, "md_dir": str(md_dir), "machine": platform.processor() or
                         platform.machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "runs": runs})
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
