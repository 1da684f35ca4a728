"""Shear-loop MD on one core: does a loop of radius R expand or shrink at (stress, T), how fast, at what cost.

Every run goes through dislomob.md.run.simulate (md.geometry loop: box pre-strained by the applied stress,
md.loop.minimize_steps of minimization, load from t = 0, DXA every md.sample_every_ps), cached by content
hash in --cache, so a rerun of the same grid costs nothing. Per run it prints the atoms, the DXA loop
radius R(t) (area-equivalent radius of the loop projected on the glide plane), dR/dt fitted after
--skip-ps, expand / shrink, the measured resolved shear stress (NPT mean) and the wall seconds per ps of
MD (build + minimization + MD + DXA; one LAMMPS thread). Per radius: the critical stress where dR/dt
changes sign (linear interpolation between the bracketing stresses), against two line-tension
estimates: the isolated circular glide loop of the non-singular theory, mean inward self-force / b =
mu b / (8 pi R) [(2 - nu)/(1 - nu) (ln(8R/a) - 1) + 1/2] with a = features.core_width_b |b| (derived in
tests/test_loop_physics.py), and the same loop in the run's periodic cell as featurize computes it
(its images and the cell-average removal of features.images / remove_mean_stress).

Usage (one core; ~12 min of CPU for the default grid, 3 and 4 nm x 1, 1.5, 2 GPa x 300, 500 K, 0.6 ps):
  OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_loop_md.py \
      [--radii 3 4] [--stresses 1.0 1.5 2.0] [--temperatures 300 500] [--duration-ps 0.6] [--gap-x-nm 5] [--gap-y-nm 3]
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import numpy as np

from dislomob.atomic import write_json
from dislomob.config import Config, load_config, parse_config
from dislomob.features.discretize import discretize_line, gauss_points
from dislomob.features.featurize import stress_settings
from dislomob.features.graphs import snapshot
from dislomob.md.analysis import ANGSTROM_PER_PS_TO_M_S
from dislomob.md.run import RunSpec, simulate
from dislomob.md.trajectory import Line, Trajectory, read_trajectory

Z = np.array([0.0, 0.0, 1.0])


def loop_config(base: Config, radius_nm: float, gap_x_nm: float, gap_y_nm: float, height_nm: float, duration_ps: float,
                sample_every_ps: float) -> Config:
    """``base`` with a loop of ``radius_nm`` in a cell 2R + gap (x, y) wide and ``height_nm`` high, loaded from t = 0, 1 thread."""
    data = base.model_dump()
    data["md"].update({"geometry": "loop", "settle_ps": 0.0, "duration_ps": duration_ps, "sample_every_ps": sample_every_ps,
                       "threads": 1, "write_ca": False, "dxa_overlap": False})
    data["md"]["loop"].update({"radius_nm": radius_nm, "glide_nm": 2 * radius_nm + gap_x_nm, "line_nm": 2 * radius_nm + gap_y_nm,
                               "height_nm": height_nm})
    return parse_config(data)


def loop_radius_angstrom(line: Line) -> float:
    """Area-equivalent radius (Angstrom) of a closed DXA line projected on the glide plane (box z normal)."""
    p = np.asarray(line.points, dtype=np.float64)[:, :2]
    x, y = p[:, 0], p[:, 1]
    return float(np.sqrt(0.5 * abs(x @ np.roll(y, -1) - y @ np.roll(x, -1)) / np.pi))


def radius_series(traj: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """(times ps, loop radius Angstrom) of the frames that hold exactly one closed loop."""
    t, r = [], []
    for fr in traj.frames:
        loops = [ln for ln in fr.lines if ln.closed_loop]
        if len(fr.lines) == 1 and loops:
            t.append(fr.time_ps)
            r.append(loop_radius_angstrom(loops[0]))
    return np.array(t), np.array(r)


def radius_rate_m_s(t: np.ndarray, r: np.ndarray, skip_ps: float) -> float:
    """Least-squares dR/dt (m/s) of the frames after ``skip_ps``; nan with fewer than 3."""
    sel = t >= skip_ps - 1e-9
    if sel.sum() < 3:
        return float("nan")
    return float(np.polyfit(t[sel], r[sel], 1)[0]) * ANGSTROM_PER_PS_TO_M_S


def isolated_critical_stress_gpa(radius_angstrom: float, cfg: Config) -> float:
    """Resolved shear stress (GPa) that balances the mean self-force of an isolated circular glide loop."""
    mu, nu = cfg.material.shear_modulus_gpa, cfg.material.poisson_ratio
    b = cfg.material.lattice_a_angstrom * math.sqrt(3) / 2
    a = cfg.features.core_width_b * b
    k = (2 - nu) / (1 - nu)
    return mu * b / (8 * math.pi * radius_angstrom) * (k * (math.log(8 * radius_angstrom / a) - 1) + 0.5)


def periodic_critical_stress_gpa(radius_angstrom: float, cell: np.ndarray, b_box: np.ndarray, cfg: Config) -> float:
    """Mean inward Peach-Koehler self-force / b (GPa) of a circle of ``radius_angstrom`` in ``cell`` with featurize's stress."""
    centre = 0.5 * np.asarray(cell).sum(axis=0)
    t = np.linspace(0.0, 2 * np.pi, 721)
    pts = centre + radius_angstrom * np.stack([np.cos(t), np.sin(t), np.zeros_like(t)], axis=1)
    line = discretize_line(Line(pts, np.zeros(3), b_box, True, False), cell, 10 * cfg.features.node_spacing_nm,
                           cfg.features.min_nodes_per_line, 0, 1.0)
    b = float(np.linalg.norm(b_box))
    snap = snapshot([line], cell, np.zeros((3, 3)), Z, 300.0, cfg.features.n_gauss, stress_settings(cfg, b))
    starts, ends, _ = line.segment_ends()
    gps = gauss_points(starts, ends, cfg.features.n_gauss)
    xi = (ends - starts) / np.linalg.norm(ends - starts, axis=1)[:, None]
    f = np.cross(snap.gp_stress_gpa @ line.burgers, xi[gps.segment])
    r = gps.pos - centre
    r[:, 2] = 0.0
    f_r = np.einsum("nk,nk->n", f, r / np.linalg.norm(r, axis=1)[:, None])
    return float(-np.sum(gps.weight * f_r) / np.sum(gps.weight) / b)


def critical_stress(stresses: list[float], rates: list[float]) -> tuple[float | None, str]:
    """Stress (GPa) where dR/dt crosses zero by linear interpolation, or why there is none (a bound)."""
    pts = sorted((s, v) for s, v in zip(stresses, rates) if np.isfinite(v))
    for (s0, v0), (s1, v1) in zip(pts[:-1], pts[1:]):
        if v0 <= 0 < v1:
            return s0 + (s1 - s0) * (-v0) / (v1 - v0), f"between {s0:g} and {s1:g} GPa"
    if pts and all(v > 0 for _, v in pts):
        return None, f"< {pts[0][0]:g} GPa (all expand)"
    if pts and all(v <= 0 for _, v in pts):
        return None, f"> {pts[-1][0]:g} GPa (all shrink)"
    return None, "no bracket"


def run_one(cfg: Config, spec: RunSpec, cache: Path, skip_ps: float) -> dict:
    """Simulate (or reuse) one loop run and measure it."""
    t0, c0 = time.perf_counter(), time.process_time()
    path = simulate(spec, cfg.md, cfg.material, cache)
    fresh = time.perf_counter() - t0 > 1.0
    cpu_s = time.process_time() - c0 if fresh else float("nan")
    traj = read_trajectory(path)
    m = traj.meta
    t, r = radius_series(traj)
    rate = radius_rate_m_s(t, r, skip_ps)
    cell = traj.frames[0].cell if traj.frames else np.diag(m.box_angstrom)
    b_box = np.array(m.rotation) @ np.array(m.burgers) * cfg.material.lattice_a_angstrom
    span = float(t[-1] - t[0]) if len(t) > 1 else 0.0
    return {
        "radius_nm": cfg.md.loop.radius_nm, "stress_gpa": spec.stress_gpa, "temperature_k": spec.temperature_k,
        "cell_nm": [round(float(v) / 10, 3) for v in m.box_angstrom], "atoms": m.n_atoms, "status": m.status,
        "events": [e.detail for e in m.events], "frames": len(traj.frames),
        "radius_angstrom": [round(float(v), 2) for v in r], "time_ps": [round(float(v), 3) for v in t],
        "dr_dt_m_s": rate, "outcome": "expand" if rate > 0 else ("shrink" if rate <= 0 else "unknown"),
        "delta_r_angstrom": float(r[-1] - r[0]) if len(r) else float("nan"), "span_ps": span,
        "measured_stress_gpa": m.measured_stress_gpa, "wall_s": m.wall_time_s,
        "s_per_ps": m.wall_time_s / cfg.md.duration_ps, "production_s_per_ps": (m.production_wall_s or 0) / cfg.md.duration_ps,
        "cpu_s": cpu_s, "cpu_s_per_ps": cpu_s / cfg.md.duration_ps, "fresh_run": fresh, "file": path.name,
        "periodic_critical_gpa": periodic_critical_stress_gpa(cfg.md.loop.radius_nm * 10, cell, b_box, cfg),
        "isolated_critical_gpa": isolated_critical_stress_gpa(cfg.md.loop.radius_nm * 10, cfg),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--radii", type=float, nargs="+", default=[3.0, 4.0], help="loop radii, nm")
    p.add_argument("--stresses", type=float, nargs="+", default=[1.0, 1.5, 2.0], help="resolved shear stresses, GPa")
    p.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 500.0], help="K")
    p.add_argument("--gap-x-nm", type=float, default=5.0,
                   help="cell x (glide direction; along b for the default 90 deg box) = 2R + gap (nm): the edge parts bulge along b")
    p.add_argument("--gap-y-nm", type=float, default=3.0, help="cell y = 2R + gap (nm)")
    p.add_argument("--height-nm", type=float, default=4.0, help="cell height along the plane normal (nm)")
    p.add_argument("--duration-ps", type=float, default=0.6)
    p.add_argument("--sample-every-ps", type=float, default=0.1)
    p.add_argument("--skip-ps", type=float, default=0.1, help="dR/dt fitted on frames after this (ps)")
    p.add_argument("--angle-deg", type=float, default=90.0, help="box orientation (character of the box y axis)")
    p.add_argument("--cache", default="/tmp/dislomob_loop_md", help="trajectory cache folder")
    p.add_argument("--out", default="benchmarks/results/loop_md.json")
    args = p.parse_args(argv)
    base = load_config(args.params)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for radius in args.radii:
        cfg = loop_config(base, radius, args.gap_x_nm, args.gap_y_nm, args.height_nm, args.duration_ps, args.sample_every_ps)
        for temp in args.temperatures:
            for stress in args.stresses:
                row = run_one(cfg, RunSpec(temp, stress, args.angle_deg, geometry="loop", seed=base.seed), cache, args.skip_ps)
                rows.append(row)
                rt = " ".join(f"{v:.1f}" for v in row["radius_angstrom"][::2])
                print(f"R={radius:g} nm  s={stress:g} GPa  T={temp:g} K  {row['atoms']} atoms  {row['outcome']:6s} "
                      f"dR/dt={row['dr_dt_m_s']:7.0f} m/s  dR={row['delta_r_angstrom']:5.1f} A over {row['span_ps']:.1f} ps  "
                      f"meas {row['measured_stress_gpa'] or float('nan'):.2f} GPa  {row['s_per_ps']:.0f} s/ps wall, "
                      f"{row['cpu_s_per_ps']:.0f} CPU s/ps  "
                      f"status {row['status']}  R(t) {rt}", flush=True)
    print("\n| R nm | cell nm | atoms | T K | stress GPa | measured GPa | outcome | dR/dt m/s | dR A (ps) | wall s/ps | CPU s/ps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['radius_nm']:g} | {' x '.join(f'{v:.1f}' for v in r['cell_nm'])} | {r['atoms']} | {r['temperature_k']:g} | "
              f"{r['stress_gpa']:g} | {r['measured_stress_gpa'] or float('nan'):.2f} | {r['outcome']} | {r['dr_dt_m_s']:.0f} | "
              f"{r['delta_r_angstrom']:.1f} ({r['span_ps']:.1f}) | {r['s_per_ps']:.0f} | {r['cpu_s_per_ps']:.0f} |")
    crit = []
    print("\n| R nm | T K | critical stress from MD | isolated loop estimate GPa | in the periodic cell GPa |")
    print("|---|---|---|---|---|")
    for radius in args.radii:
        for temp in args.temperatures:
            sel = [r for r in rows if r["radius_nm"] == radius and r["temperature_k"] == temp]
            value, why = critical_stress([r["stress_gpa"] for r in sel], [r["dr_dt_m_s"] for r in sel])
            iso, per = sel[0]["isolated_critical_gpa"], sel[0]["periodic_critical_gpa"]
            crit.append({"radius_nm": radius, "temperature_k": temp, "critical_gpa": value, "bracket": why,
                         "isolated_estimate_gpa": iso, "periodic_estimate_gpa": per})
            shown = f"{value:.2f} GPa ({why})" if value is not None else why
            print(f"| {radius:g} | {temp:g} | {shown} | {iso:.2f} | {per:.2f} |")
    rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in rows]
    out = {"machine": platform.platform(), "date": time.strftime("%Y-%m-%d"), "args": vars(args), "runs": rows,
           "critical": crit}
    write_json(args.out, out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
