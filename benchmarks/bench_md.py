"""MD + on-the-fly DXA throughput vs the same LAMMPS run without DXA; DXA cost; atom-steps per second.

Runs side by side in one process on the same system (demo edge dipole, 300 K, 0.5 GPa):
  A. LAMMPS only: the production loop (100-step chunks, stress sample, positions copy), no DXA;
  B. dislomob's production loop with DXA every sample_every_ps, run after MD (dxa_overlap=False);
  C. the same with DXA overlapped with MD on its worker thread (default).
Both B and C use the params' DXA glide-plane window (md.dxa_window_nm).
Prints the throughput ratios A/B and A/C, DXA milliseconds per 10k atoms, atom-steps/s per core.
Usage: .venv/bin/python benchmarks/bench_md.py [--duration-ps 2.0] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np

from dislomob.config import Config, parse_config
from dislomob.md import lmp as L
from dislomob.md.dxa import run_dxa
from dislomob.md.potential import resolve_potential
from dislomob.md.run import RunSpec, _base_meta, build_configuration, dxa_window, simulate


def md_only(cfg: Config, spec: RunSpec) -> tuple[float, int, int]:
    """Wall seconds of the production loop without DXA, atom count, steps."""
    md, mat = cfg.md, cfg.material
    conf = build_configuration(spec, md, mat)
    meta = _base_meta(spec, md, mat, "bench", conf)
    lmp = L.open_lammps(md.threads)
    try:
        L.setup_system(lmp, conf.positions, conf.cell, resolve_potential(mat.potential), mat.element, 55.845)
        steps = round(md.sample_every_ps * 1000 / md.timestep_fs)
        lmp.command(f"timestep {md.timestep_fs / 1000.0!r}")
        lmp.command(f"thermo {steps}")
        L.minimize(lmp, md.minimize_steps)
        lmp.command("reset_timestep 0")
        lmp.command(f"velocity all create {2 * spec.temperature_k!r} {spec.seed} mom yes rot no dist gaussian")
        lmp.command(L.npt_fix(spec.temperature_k, np.zeros((3, 3)), md.temperature_damping_ps, md.pressure_damping_ps))
        lmp.command(f"run {round(md.equilibrate_ps * 1000 / md.timestep_fs)}")
        lmp.command("unfix md")
        stress = np.array(meta.stress_tensor_gpa)
        L.apply_elastic_strain(lmp, stress, mat.shear_modulus_gpa, mat.poisson_ratio)
        lmp.command(L.npt_fix(spec.temperature_k, stress, md.temperature_damping_ps, md.pressure_damping_ps))
        n = round(md.duration_ps / md.sample_every_ps)
        t0 = time.perf_counter()
        for i in range(n):
            lmp.command(f"run {steps} pre {'yes' if i == 0 else 'no'} post no")
            L.stress_gpa_of(lmp)
            L.positions_of(lmp)
            L.cell_of(lmp)
        return time.perf_counter() - t0, len(conf.positions), n * steps
    finally:
        lmp.close()


def with_dxa(cfg: Config, spec: RunSpec, overlap: bool) -> float:
    """Wall seconds of dislomob's production loop with DXA frames."""
    data = cfg.model_dump()
    data["md"]["dxa_overlap"] = overlap
    c = parse_config(data)
    with tempfile.TemporaryDirectory() as tmp:
        from dislomob.md.trajectory import read_meta

        meta = read_meta(simulate(spec, c.md, c.material, tmp))
        assert meta.status == "ok", meta.failure_reason
        return meta.production_wall_s


def dxa_ms_per_frame(cfg: Config, spec: RunSpec, repeats: int = 5) -> tuple[float, float, int]:
    """Median DXA milliseconds per frame of the built dipole: whole cell, glide-plane window; atom count."""
    conf = build_configuration(spec, cfg.md, cfg.material)
    windowed = dxa_window(conf.positions, conf.cell, list(conf.cores_angstrom[:, 2]), cfg.md.dxa_window_nm * 10)
    out = []
    for pos in (conf.positions, windowed):
        run_dxa(pos, conf.cell, np.zeros(3))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run_dxa(pos, conf.cell, np.zeros(3))
            times.append(time.perf_counter() - t0)
        out.append(statistics.median(times) * 1000)
    return out[0], out[1], len(conf.positions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-ps", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args()
    from dislomob.config import load_config

    data = load_config(args.params).model_dump()
    data["md"].update({"duration_ps": args.duration_ps, "equilibrate_ps": 0.5})
    cfg = parse_config(data)
    spec = RunSpec(300.0, 0.5, 90.0)
    a, b, c = [], [], []
    for _ in range(args.repeats):
        t, n_atoms, steps = md_only(cfg, spec)
        a.append(t)
        b.append(with_dxa(cfg, spec, overlap=False))
        c.append(with_dxa(cfg, spec, overlap=True))
    ta, tb, tc = statistics.median(a), statistics.median(b), statistics.median(c)
    frames = round(cfg.md.duration_ps / cfg.md.sample_every_ps)
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}")
    print(f"system: edge dipole, {n_atoms} atoms, {steps} steps ({cfg.md.duration_ps} ps), DXA every {cfg.md.sample_every_ps} ps "
          f"({frames} frames), {cfg.md.threads} OpenMP threads, median of {args.repeats}")
    print(f"A  LAMMPS only            : {ta:7.2f} s")
    print(f"B  + DXA after each chunk : {tb:7.2f} s   throughput ratio A/B = {ta / tb:.3f}")
    print(f"C  + DXA overlapped       : {tc:7.2f} s   throughput ratio A/C = {ta / tc:.3f}")
    full, win, n = dxa_ms_per_frame(cfg, spec)
    print(f"DXA per frame: whole cell {full:.0f} ms ({full * 1e4 / n:.0f} ms per 10k atoms); "
          f"{cfg.md.dxa_window_nm} nm glide-plane window {win:.0f} ms")
    print(f"MD: {n_atoms * steps / ta:.3g} atom-steps/s, {n_atoms * steps / ta / cfg.md.threads:.3g} per core")


if __name__ == "__main__":
    main()
