"""DDD law throughput (nodes/s): Python API, MLflow pyfunc and the exported AOTInductor package, side by side.

For periodic networks of straight +b/-b lines (1e2, 1e3, 1e4 nodes, 1 nm segments, lines 10 nm apart in a
cell of the md box height) this times, per size and per torch thread count (``--torch-threads``; the package's
OpenMP follows it), the median of ``--repeats`` calls after one warm-up call:

- ``python_internal``: ``MobilityLaw.velocities`` on the network without quadrature stress (the law computes the
  network's own non-singular stress, numba kernel on ``--threads`` threads, + applied stress; one timed call
  from 1000 nodes, without a warm-up call from 10^4 nodes, skipped above ``--internal-max-nodes``: its cost grows
  as nodes^2 x periodic images, ~18 min a call at 10^4 nodes on this machine);
  ``pyfunc_internal`` and ``export_internal_end_to_end``: the same network through the pyfunc model and through
  ``export_inputs`` (which computes that stress at the Gauss points) + the package;
- ``python_quadrature``: ``MobilityLaw.velocities`` on the same network carrying the DDD code's quadrature stress
  (2 points per segment: applied stress + a smooth field);
- ``pyfunc``: the logged and re-loaded MLflow pyfunc model on the quadrature network's JSON text (its own path:
  JSON parse, network checks, the law, the output DataFrame);
- ``export_call``: the ``.pt2`` package in-process on the contract tensors of the quadrature network;
- ``export_end_to_end``: ``export_inputs`` (walk, checks, contract layout) + the package call.

The package is compiled once (seconds reported apart); outputs of the quadrature paths are compared (max abs
difference, m/s) with the Python API's. Prints a table and one JSON line; writes ``--out`` atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dislomob.atomic import write_json
from dislomob.config import Config, load_config
from dislomob.ddd.law import MobilityLaw
from dislomob.ddd.network import DislocationNetwork, dumps_network, network_to_dict, segment_vectors
from dislomob.ddd.sanity import burgers_length_angstrom, resolved_shear_z
from dislomob.export.contract import export_inputs
from dislomob.export.package import export_law, load_package

SEGMENT_NM = 1.0
LINE_SPACING_NM = 10.0
LAYOUT = {100: (2, 50), 1000: (10, 100), 10000: (50, 200)}  # nodes -> (lines, nodes per line)
TAU_GPA = 0.3
TEMPERATURE_K = 300.0


def lines_network(cfg: Config, n_lines: int, per_line: int) -> DislocationNetwork:
    """``n_lines`` periodic straight lines along y (alternating +b/-b, screw-edge mixed b in the glide plane z),
    ``per_line`` nodes each, 1 nm segments, lines on a 10 nm grid in x, in a periodic cell (Angstrom)."""
    if n_lines % 2 or per_line < 3:
        raise ValueError(f"n_lines={n_lines}, per_line={per_line}: need an even line count and >= 3 nodes per line")
    ly = 10.0 * SEGMENT_NM * per_line
    lx = 10.0 * LINE_SPACING_NM * n_lines
    lz = 10.0 * cfg.md.box.height_nm
    b_hat = np.array([np.cos(np.radians(60.0)), np.sin(np.radians(60.0)), 0.0])
    b = burgers_length_angstrom(cfg) * b_hat
    k = np.arange(per_line)
    pos, seg, bur = [], [], []
    for i in range(n_lines):
        x = (i + 0.5) * lx / n_lines
        z = (0.25 if i % 2 == 0 else 0.75) * lz
        pos.append(np.column_stack([np.full(per_line, x), ly * k / per_line, np.full(per_line, z)]))
        seg.append(np.column_stack([i * per_line + k, i * per_line + (k + 1) % per_line]))
        bur.append(np.tile(b if i % 2 == 0 else -b, (per_line, 1)))
    n = n_lines * per_line
    return DislocationNetwork(positions_angstrom=np.vstack(pos), segments=np.vstack(seg),
                              burgers_angstrom=np.vstack(bur), normals=np.tile([0.0, 0.0, 1.0], (n, 1)),
                              temperature_k=TEMPERATURE_K, applied_stress_gpa=resolved_shear_z(TAU_GPA, b_hat),
                              cell_angstrom=np.diag([lx, ly, lz]))


def with_quadrature(net: DislocationNetwork, seed: int = 0) -> DislocationNetwork:
    """``net`` carrying a DDD code's quadrature stress: 2 points per segment (u = 0.25, 0.75), applied stress plus
    a smooth symmetric field (GPa) that varies along the cell."""
    import dataclasses

    rng = np.random.default_rng(seed)
    m = net.n_segments
    seg = np.repeat(np.arange(m), 2)
    u = np.tile([0.25, 0.75], m)
    pos = net.positions_angstrom[net.segments[seg, 0]] + u[:, None] * segment_vectors(net)[seg]
    amp = rng.normal(scale=0.05, size=(3, 3))
    phase = 2 * np.pi * pos[:, 1] / net.cell_angstrom[1, 1]
    field = np.sin(phase)[:, None, None] * (amp + amp.T)[None]
    return dataclasses.replace(net, quad_positions_angstrom=pos, quad_segments=seg,
                               quad_stress_gpa=field + net.applied_stress_gpa[None])


def timed(fn: Callable[[], Any], repeats: int, warmup: bool = True) -> tuple[float, Any]:
    """(median seconds of ``repeats`` calls after one warm-up call (none without ``warmup``), the last result)."""
    out = fn() if warmup else None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def log_pyfunc(ensemble: Path, cfg: Config, example: Path, root: Path):
    """Log the law as a pyfunc model into a sqlite MLflow store under ``root`` and load it back."""
    import mlflow
    import mlflow.pyfunc

    from dislomob.registry.package import log_law_model
    from dislomob.tracking import tracking_setup

    tracking_setup(f"sqlite:///{root / 'mlflow.db'}", "ddd-throughput")  # artifacts under root, not ./mlruns
    with mlflow.start_run():
        info = log_law_model(ensemble, cfg, example)
    return mlflow.pyfunc.load_model(info.model_uri)


def cpu_model() -> str:
    """The CPU model name (lscpu / /proc/cpuinfo)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def bench_size(n_nodes: int, law: MobilityLaw, pyfunc, package, cfg: Config, repeats: int,
               internal: bool, torch_threads: int) -> dict[str, Any]:
    """Timings (s, nodes/s) and agreement (m/s) of every path on the network of ``n_nodes`` nodes, torch (and the
    package's OpenMP) on ``torch_threads`` threads; the internal-stress path gets one timed call from 1000 nodes."""
    from dislomob.registry.pyfunc import networks_frame

    torch.set_num_threads(torch_threads)
    net = lines_network(cfg, *LAYOUT[n_nodes])
    quad = with_quadrature(net)
    row: dict[str, Any] = {"n_nodes": net.n_nodes, "torch_threads": torch_threads,
                           "n_quadrature_points": int(len(quad.quad_segments))}
    seconds: dict[str, float] = {}
    if internal:
        reps = 1 if n_nodes >= 1000 else repeats
        warm = n_nodes < 10000  # ~18 min a call at 10^4 nodes: no warm-up (the kernel is compiled in seconds)
        seconds["python_internal"], (v_int, _) = timed(lambda: law.velocities(net), reps, warm)
        row["max_speed_internal_m_per_s"] = float(np.abs(v_int).max())
        plain = networks_frame([dumps_network(network_to_dict(net))])
        seconds["pyfunc_internal"], out_int = timed(lambda: pyfunc.predict(plain), reps, warm)

        def internal_end_to_end():
            ins = export_inputs(net, cfg)
            with torch.no_grad():
                return ins.to_network_order(package(*ins.tensors())[0].numpy())

        seconds["export_internal_end_to_end"], v_ex_int = timed(internal_end_to_end, reps, warm)
        row["max_abs_diff_internal_m_per_s"] = {
            "pyfunc_vs_python": float(np.abs(out_int[["vx_m_per_s", "vy_m_per_s", "vz_m_per_s"]].to_numpy()
                                             - v_int).max()),
            "export_vs_python": float(np.abs(v_ex_int - v_int).max())}
    seconds["python_quadrature"], (v_ref, s_ref) = timed(lambda: law.velocities(quad), repeats)
    text = dumps_network(network_to_dict(quad))
    frame = networks_frame([text])
    seconds["pyfunc"], out = timed(lambda: pyfunc.predict(frame), repeats)
    v_py = out[["vx_m_per_s", "vy_m_per_s", "vz_m_per_s"]].to_numpy()
    inputs = export_inputs(quad, cfg)
    tensors = inputs.tensors()

    def call():
        with torch.no_grad():
            return package(*tensors)

    def end_to_end():
        ins = export_inputs(quad, cfg)
        with torch.no_grad():
            v, s = package(*ins.tensors())
        return ins.to_network_order(v.numpy()), ins.to_network_order(s.numpy())

    seconds["export_call"], _ = timed(call, repeats)
    seconds["export_end_to_end"], (v_ex, s_ex) = timed(end_to_end, repeats)
    row["seconds"] = seconds
    row["nodes_per_s"] = {k: net.n_nodes / s for k, s in seconds.items()}
    row["max_speed_m_per_s"] = float(np.abs(v_ref).max())
    row["max_abs_diff_m_per_s"] = {"pyfunc_vs_python": float(np.abs(v_py - v_ref).max()),
                                   "export_vs_python": float(np.abs(v_ex - v_ref).max()),
                                   "export_sigma_vs_python": float(np.abs(s_ex - s_ref).max())}
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of nodes/s per path and the agreement columns."""
    paths = ["python_internal", "pyfunc_internal", "export_internal_end_to_end", "python_quadrature", "pyfunc",
             "export_call", "export_end_to_end"]
    head = ("| nodes | torch threads | " + " | ".join(f"{p} (nodes/s)" for p in paths)
            + " | export/python_quadrature | max abs diff pyfunc, export (m/s) | max speed (m/s) |")
    lines = [head, "|" + "---|" * (len(paths) + 5)]
    for r in rows:
        nps = r["nodes_per_s"]
        cells = [f"{nps[p]:.3g}" if p in nps else "not run" for p in paths]
        ratio = nps["export_end_to_end"] / nps["python_quadrature"]
        call = nps["export_call"] / nps["python_quadrature"]
        d = r["max_abs_diff_m_per_s"]
        lines.append(f"| {r['n_nodes']} | {r['torch_threads']} | " + " | ".join(cells)
                     + f" | {ratio:.2f}x (call {call:.1f}x) | {d['pyfunc_vs_python']:.1e}, {d['export_vs_python']:.1e}"
                     f" | {r['max_speed_m_per_s']:.3g} |")
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark (see module docstring) and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ensemble", default="models/train/ensemble.pt")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--example", default="examples/networks/dipole_fe.json")
    ap.add_argument("--sizes", type=int, nargs="+", default=sorted(LAYOUT))
    ap.add_argument("--internal-max-nodes", type=int, default=10000,
                    help="time the internal-stress path only up to this many nodes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="numba threads of the internal stress kernel")
    ap.add_argument("--torch-threads", type=int, nargs="+", default=[1, 2],
                    help="torch / package OpenMP thread counts to time (each size once per count)")
    ap.add_argument("--out", default="benchmarks/results/ddd_throughput.json")
    args = ap.parse_args()
    bad = [s for s in args.sizes if s not in LAYOUT]
    if bad:
        raise SystemExit(f"--sizes {bad}: allowed {sorted(LAYOUT)}")
    import numba

    numba.set_num_threads(args.threads)
    load_start = os.getloadavg()
    cfg = load_config(args.params)
    ensemble = Path(args.ensemble)
    law = MobilityLaw.from_path(ensemble, cfg)
    with tempfile.TemporaryDirectory(prefix="dislomob-bench-ddd-") as tmp:
        root = Path(tmp)
        small = with_quadrature(lines_network(cfg, *LAYOUT[100]))
        export_info = export_law(ensemble, cfg, root / "law.pt2", export_inputs(small, cfg))
        package = load_package(root / "law.pt2")
        t0 = time.perf_counter()
        pyfunc = log_pyfunc(ensemble, cfg, Path(args.example), root)
        pyfunc_seconds = time.perf_counter() - t0
        rows = []
        for n in args.sizes:
            for th in args.torch_threads:
                row = bench_size(n, law, pyfunc, package, cfg, args.repeats, n <= args.internal_max_nodes, th)
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = {"benchmark": "ddd_throughput", "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "cpu": cpu_model(), "cpus": os.cpu_count(), "numba_threads": args.threads,
              "load_average_at_start": load_start, "torch": torch.__version__,
              "ensemble": str(ensemble), "ensemble_md5": hashlib.md5(ensemble.read_bytes()).hexdigest(),
              "repeats": args.repeats, "load_average_at_end": os.getloadavg(),
              "export_seconds": export_info["export_seconds"], "compile_seconds": export_info["compile_seconds"],
              "pyfunc_log_and_load_seconds": pyfunc_seconds, "rows": rows}
    print(table(rows))
    print(json.dumps(result))
    write_json(args.out, result)


if __name__ == "__main__":
    main()
