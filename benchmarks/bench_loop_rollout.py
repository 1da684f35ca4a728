"""Loop rollouts over 5 ps: the loop-trained law (and its fitted law) against MD loops recorded 5 ps in a larger cell.

The pipeline's loops (params `loops`) are recorded 1.2 ps: in their 13 x 11 nm cell an expanding loop meets its
periodic images after 1.8-4 ps (`benchmarks/loop_extent.py`). Here new loops, same radius, protocol and material,
are run in a cell --glide-nm x --line-nm wide (default 25 x 12 nm, ~104 k atoms) for --duration-ps after the
same settling, one LAMMPS thread per run, the runs side by side (a process each); a loop that meets its images
anyway is cut there by the MD's line-count check and compared as far as it got. Each run gets its own seed
(params `seed` + 101), so no frame is shared with the loop training set. Then the ensemble of the `loop_train`
stage (`loops.model_dir`) and the phenomenological law fitted to its training loops (as the evaluate stage fits it)
are rolled out with the pipeline's `rollout` settings, and the dipole-trained champion (`models/register`) too,
recorded diverged or not. Prints the relative error (line distance to the MD / MD distance from the start frame) at
--report-ps times, writes benchmarks/results/loop_rollout_5ps.json, docs/loop_rollout_5ps.png (error against time) and
docs/loop_rollout_5ps_overlay.png (MD and rollout lines at three times); prints the loops' radii at those times.

Trajectories are cached by content hash in --cache: a rerun only redoes the rollouts (~1 min).
Usage (~20 min on 2 idle cores for the defaults):
  .venv/bin/python benchmarks/bench_loop_rollout.py [--conditions 300:1.75 500:1.75] [--glide-nm 25] [--line-nm 12]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import time
from pathlib import Path

import numpy as np

from dislomob.atomic import write_json
from dislomob.config import Config, load_config, parse_config
from dislomob.loop_profile import loop_config

ROOT = Path(__file__).resolve().parents[1]


def long_loop_config(base: Config, glide_nm: float, line_nm: float, duration_ps: float) -> Config:
    """The pipeline's loop params with a ``glide_nm`` x ``line_nm`` cell, ``duration_ps`` recorded, one thread."""
    data = loop_config(base).model_dump()
    data["md"].update({"duration_ps": duration_ps, "threads": 1})
    data["md"]["loop"].update({"glide_nm": glide_nm, "line_nm": line_nm})
    data["rollout"].update({"horizon_ps": duration_ps})
    return parse_config(data)


def _simulate(job: tuple) -> tuple[str, float]:
    """Run (or reuse) one loop; returns the trajectory path and the wall seconds (a process of its own)."""
    from dislomob.md.run import simulate

    spec, cfg, cache = job
    t0 = time.perf_counter()
    path = simulate(spec, cfg.md, cfg.material, cache)
    return str(path), time.perf_counter() - t0


def rollouts(cfg: Config, base: Config, paths: list[Path]) -> tuple[list[dict], dict]:
    """Rollout results of the loop-trained law and its fitted law per trajectory, and the champion's end errors."""
    import torch

    from dislomob.ddd.law import MobilityLaw
    from dislomob.ddd.rollout import rollout_errors
    from dislomob.errors import DislomobError
    from dislomob.evaluate.models import fit_law, load_evaluated_model
    from dislomob.evaluate.test_sets import by_trajectory
    from dislomob.train.data import load_graph_dir

    torch.set_num_threads(2)
    loops = loop_config(base)
    lm = load_evaluated_model(loops, "train", train_dir=loops.loops.model_dir)
    pool = by_trajectory(load_graph_dir(loops.loops.graphs_dir))
    law, _ = fit_law([g for t in lm.train_ids for g in pool[t]], loops.train.baseline_steps)
    run_cfg = lm.cfg.model_copy(update={"rollout": cfg.rollout})
    laws = {"pignn": MobilityLaw(lm.model, run_cfg), "baseline": MobilityLaw(law, run_cfg)}
    results = [rollout_errors(laws, p, run_cfg) for p in paths]
    champion = {}
    champ = load_evaluated_model(base, "champion")
    champ_cfg = champ.cfg.model_copy(update={"rollout": cfg.rollout})
    for p in paths:
        try:
            r = rollout_errors({"pignn": MobilityLaw(champ.model, champ_cfg)}, p, champ_cfg, progress=False)
            champion[p.stem] = {"error_end": r["laws"]["pignn"]["relative_error"][-1], "horizon_ps": r["horizon_ps"]}
        except (DislomobError, ValueError) as err:
            champion[p.stem] = {"failed": f"{type(err).__name__}: {err}"}
    return results, champion


def area_radius_angstrom(lines: list) -> float:
    """Area-equivalent radius (Angstrom) of the largest closed polyline of ``lines`` projected on the glide plane (xy)."""
    p = max((np.asarray(ln, dtype=float) for ln in lines), key=len)[:, :2]
    x, y = p[:, 0], p[:, 1]
    return float(np.sqrt(0.5 * abs(x @ np.roll(y, -1) - y @ np.roll(x, -1)) / np.pi))


def overlay_radii(result: dict) -> dict[str, list[float]]:
    """Loop radius (Angstrom) of the MD and of each law's rollout at the overlay times of one rollout result."""
    ov = result["overlay"]
    return {"times_ps": ov["times_ps"], **{k: [area_radius_angstrom(lines) for lines in ov[k]]
                                          for k in ("md", *result["laws"])}}


def start_radius(path: Path) -> float:
    """Area-equivalent radius (Angstrom) of the loop in the first recorded frame."""
    from dislomob.md.trajectory import read_trajectory

    lines = [ln.points for ln in read_trajectory(path).frames[0].lines if ln.closed_loop]
    return area_radius_angstrom(lines)


def _at(times: list[float], values: list, t: float):
    """The value at the compared time nearest ``t`` (None beyond the horizon)."""
    i = int(np.argmin(np.abs(np.asarray(times) - t)))
    return values[i] if abs(times[i] - t) < 0.051 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--conditions", nargs="+", default=["300:1.75", "500:1.75"], help="T_K:stress_GPa per loop")
    ap.add_argument("--glide-nm", type=float, default=25.0, help="cell along b (x), where the edge parts bulge")
    ap.add_argument("--line-nm", type=float, default=12.0, help="cell along y")
    ap.add_argument("--duration-ps", type=float, default=5.0, help="recorded after the loops' settling")
    ap.add_argument("--report-ps", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
    ap.add_argument("--cache", default="/tmp/dislomob_loop_long")
    args = ap.parse_args()
    from dislomob.md.run import RunSpec
    from dislomob.evaluate.rollout_report import error_figure, overlay_figure

    base = load_config(args.params)
    cfg = long_loop_config(base, args.glide_nm, args.line_nm, args.duration_ps)
    specs = [RunSpec(float(c.split(":")[0]), float(c.split(":")[1]), cfg.loops.angle_deg, geometry="loop",
                     seed=base.seed + 101) for c in args.conditions]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(min(2, len(specs))) as pool:
        done = pool.map(_simulate, [(s, cfg, args.cache) for s in specs])
    md_wall = time.perf_counter() - t0
    paths = [Path(p) for p, _ in done]
    print(f"MD: {len(paths)} loops in {md_wall:.0f} s wall ({', '.join(f'{w:.0f}' for _, w in done)} s each)", flush=True)
    results, champion = rollouts(cfg, base, paths)
    rows = []
    print("\n| loop | atoms | recorded ps | " + " | ".join(f"{t:g} ps" for t in args.report_ps)
          + " | MD no-motion distance at the end | champion |")
    print("|---" * (len(args.report_ps) + 5) + "|")
    from dislomob.md.trajectory import read_meta

    for spec, p, r in zip(specs, paths, results):
        meta = read_meta(p)
        t = r["times_ps"]
        cells = []
        for rt in args.report_ps:
            a, b = (_at(t, r["laws"][k]["relative_error"], rt) for k in ("pignn", "baseline"))
            cells.append("-" if a is None else f"{a:.2f} / {b:.2f}")
        radii = overlay_radii(r)
        ch = champion[p.stem]
        ch_text = f"{ch['error_end']:.2f}" if "error_end" in ch else "diverged"
        print(f"| {spec.temperature_k:g} K, {spec.stress_gpa:g} GPa | {meta.n_atoms} | {r['horizon_ps']:.1f} ({meta.status}) | "
              + " | ".join(cells) + f" | {r['md_distance_angstrom'][-1]:.1f} A | {ch_text} |")
        rows.append({"temperature_k": spec.temperature_k, "stress_gpa": spec.stress_gpa, "key": p.stem,
                     "atoms": meta.n_atoms, "status": meta.status, "md_wall_s": meta.wall_time_s,
                     "horizon_ps": r["horizon_ps"], "times_ps": t,
                     "pignn": r["laws"]["pignn"]["relative_error"], "baseline": r["laws"]["baseline"]["relative_error"],
                     "rigid_floor": r["rigid_relative_error"], "md_distance_angstrom": r["md_distance_angstrom"],
                     "wall_s_per_step": {k: v["wall_s_per_step"] for k, v in r["laws"].items()},
                     "champion": ch, "radius_angstrom": radii, "md_start_radius_angstrom": start_radius(p)})
    print("\nloop radius (area-equivalent, A): MD / PI-GNN / fitted law, from R0 at the start frame")
    for row in rows:
        rad = row["radius_angstrom"]
        print(f"  {row['temperature_k']:g} K, {row['stress_gpa']:g} GPa: R0 {row['md_start_radius_angstrom']:.1f}; "
              + "; ".join(f"{t:.1f} ps: {m:.1f} / {a:.1f} / {b:.1f}"
                          for t, m, a, b in zip(rad["times_ps"], rad["md"], rad["pignn"], rad["baseline"])))
    overlay_figure(results, ROOT / "docs" / "loop_rollout_5ps_overlay.png")
    fig = error_figure(results, ROOT / "docs" / "loop_rollout_5ps.png",
                       loop_title=f"new loops, {args.glide_nm:g} x {args.line_nm:g} nm cell: loop-trained laws")
    out = ROOT / "benchmarks" / "results" / "loop_rollout_5ps.json"
    write_json(out, {"machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M"), "args": vars(args),
                     "cell_nm": [args.glide_nm, args.line_nm, cfg.md.loop.height_nm], "md_wall_s": md_wall,
                     "runs": rows})
    print(f"wrote {out} and {fig}")


if __name__ == "__main__":
    main()
