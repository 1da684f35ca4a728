"""MD on 1 vs 2 MPI ranks (``md.ranks``): wall time of one short run of the demo cell and of a cell with 4x the atoms.

Each run is a full ``simulate`` (build, minimization, equilibration, settling, recorded production with DXA
every frame) of the demo edge dipole (300 K, 0.5 GPa) with the params' MD settings except settle_ps and
duration_ps (default 0.5 ps each) and one OpenMP thread per rank; the large cell doubles the glide and line
lengths (same height, so the same dipole geometry in z). 1 and 2 ranks run back to back for each cell.
Reported per run: total wall, production wall (the recorded part, DXA included), and the MD cost in
microseconds per atom-ps of simulated time (total wall over atoms x (equilibrate + settle + duration) ps;
production wall over atoms x duration), and the 2-rank speed-up. 2-rank runs include the launch (~1-2 s:
``mpiexec.gforker``, Python and LAMMPS start per rank). Load average before and after is recorded: on a
shared machine ranks that wait on each other lose more than one process does.

Usage: .venv/bin/python benchmarks/bench_md_ranks.py [--params params.yaml] [--settle-ps 0.5] [--duration-ps 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from dislomob.config import load_config, parse_config
from dislomob.md.run import RunSpec, simulate
from dislomob.md.trajectory import read_meta

ROOT = Path(__file__).resolve().parents[1]
SPEC = RunSpec(300.0, 0.5, 90.0)


def one_run(cfg, ranks: int, box: dict, settle_ps: float, duration_ps: float) -> dict:
    data = cfg.model_dump()
    data["md"].update({"ranks": ranks, "threads": 1, "settle_ps": settle_ps, "duration_ps": duration_ps, "box": box})
    c = parse_config(data)
    with tempfile.TemporaryDirectory() as tmp:
        meta = read_meta(simulate(SPEC, c.md, c.material, tmp, force=True))
    assert meta.status == "ok", meta.failure_reason
    simulated_ps = c.md.equilibrate_ps + settle_ps + duration_ps
    return {
        "ranks": ranks,
        "atoms": meta.n_atoms,
        "wall_s": round(meta.wall_time_s, 2),
        "production_wall_s": round(meta.production_wall_s, 2),
        "us_per_atom_ps": round(1e6 * meta.wall_time_s / (meta.n_atoms * simulated_ps), 1),
        "production_us_per_atom_ps": round(1e6 * meta.production_wall_s / (meta.n_atoms * duration_ps), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--settle-ps", type=float, default=0.5)
    ap.add_argument("--duration-ps", type=float, default=0.5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/md_ranks.json"))
    args = ap.parse_args()
    cfg = load_config(args.params)
    demo = cfg.md.box.model_dump()
    large = {**demo, "glide_nm": 2 * demo["glide_nm"], "line_nm": 2 * demo["line_nm"]}
    load_before = os.getloadavg()
    cells = {}
    for name, box in (("demo", demo), ("4x atoms", large)):
        runs = [one_run(cfg, r, box, args.settle_ps, args.duration_ps) for r in (1, 2)]
        cells[name] = {"box_nm": box, "runs": runs,
                       "speedup_2_ranks": round(runs[0]["wall_s"] / runs[1]["wall_s"], 2),
                       "production_speedup_2_ranks": round(runs[0]["production_wall_s"] / runs[1]["production_wall_s"], 2)}
    out = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor(),
                    "load_avg_before": [round(x, 2) for x in load_before],
                    "load_avg_after": [round(x, 2) for x in os.getloadavg()]},
        "date": subprocess.run(["date"], capture_output=True, text=True).stdout.strip(),
        "spec": {"temperature_k": SPEC.temperature_k, "stress_gpa": SPEC.stress_gpa, "angle_deg": SPEC.angle_deg},
        "md": {"equilibrate_ps": cfg.md.equilibrate_ps, "settle_ps": args.settle_ps, "duration_ps": args.duration_ps,
               "threads_per_rank": 1, "minimize_steps": cfg.md.minimize_steps, "dxa_window_nm": cfg.md.dxa_window_nm},
        "launcher": "DISLOMOB_MPIEXEC=" + os.environ["DISLOMOB_MPIEXEC"] if os.environ.get("DISLOMOB_MPIEXEC")
        else "mpiexec.gforker (default)",
        "cells": cells,
    }
    text = json.dumps(out, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
