"""The critical stress each law implies for the pipeline's shear loops, against the MD's.

For the first graph of every loop trajectory (params `loops.graphs_dir`, 0.2 ps after loading), the applied part of
the Gauss-point stress (resolved shear tau on the loop's glide system, the graph's `stress_gpa`) is replaced by
tau' on a grid (--taus, GPa) and each law predicts the step over the graph's dt; the mean radial component of the
nodes' steps (Angstrom, outward > 0, about the loop's centroid in the glide plane) crosses zero at the law's
critical stress. The MD's radial step on the same graph (its target) and the MD critical stress measured in
BENCHMARKS "Shear loops" (1.20-1.28 GPa for R = 4 nm in this cell) stand beside it. Laws: the registered champion
(dipole-trained), the `loop_train` ensemble, and with --extra NAME=PARAMS:MODEL_DIR any other trained ensemble
(e.g. benchmarks/bench_dipole_data_for_loops.py's).
Writes benchmarks/results/loop_critical_stress.json.
Usage (~1 min): .venv/bin/python benchmarks/loop_critical_stress.py [--extra aug=/tmp/x/params_aug.yaml:/tmp/x/models_aug]
"""

from __future__ import annotations

import argparse
import copy
import platform
import time
from pathlib import Path

import numpy as np
import torch

from dislomob.atomic import write_json
from dislomob.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def radial_mean(pos: torch.Tensor, dx: torch.Tensor) -> float:
    """Mean outward radial component (Angstrom) of the steps ``dx`` of nodes at ``pos``, in the glide plane (xy)."""
    r = pos.double() - pos.double().mean(0)
    r[:, 2] = 0.0
    return float((dx.double() * (r / r.norm(dim=1, keepdim=True))).sum(1).mean())


def with_applied(graph, tau_gpa: float):
    """``graph`` with the applied resolved shear of its Gauss-point stress changed to ``tau_gpa`` (box frame: b along
    x, glide-plane normal z, as every loop run is built)."""
    unit = torch.zeros(3, 3, dtype=torch.float64)
    unit[0, 2] = unit[2, 0] = 1.0
    h = copy.copy(graph)
    stress = graph["gp"].stress_gpa
    h["gp"].stress_gpa = (stress.double() + (tau_gpa - float(graph.stress_gpa)) * unit).to(stress.dtype)
    return h


def zero_crossing(taus: np.ndarray, values: np.ndarray) -> float | None:
    """First tau where ``values`` turn from <= 0 to > 0 (linear interpolation), None without one."""
    for i in range(len(taus) - 1):
        if values[i] <= 0 < values[i + 1]:
            return float(taus[i] - values[i] * (taus[i + 1] - taus[i]) / (values[i + 1] - values[i]))
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--taus", type=float, nargs="+", default=list(np.round(np.arange(0.0, 2.51, 0.125), 3)))
    ap.add_argument("--extra", nargs="*", default=[], help="NAME=PARAMS:MODEL_DIR of other trained ensembles")
    args = ap.parse_args()
    from dislomob.evaluate.models import load_evaluated_model
    from dislomob.loop_profile import loop_config
    from dislomob.model.predict import predict
    from dislomob.train.data import load_graph_dir

    torch.set_num_threads(2)
    base = load_config(ROOT / args.params)
    loops = loop_config(base)
    models = {"champion (dipoles)": load_evaluated_model(base, "champion").model,
              "loop-trained": load_evaluated_model(loops, "train", train_dir=loops.loops.model_dir).model}
    for spec in args.extra:
        name, _, paths = spec.partition("=")
        params, _, model_dir = paths.partition(":")
        if not (name and params and model_dir):
            raise SystemExit(f"--extra {spec!r}: expected NAME=PARAMS:MODEL_DIR")
        models[name] = load_evaluated_model(load_config(params), "train", train_dir=model_dir).model
    graphs = load_graph_dir(ROOT / loops.loops.graphs_dir)
    first = {}
    for g in graphs:
        if g.traj_id not in first or g.time_ps < first[g.traj_id].time_ps:
            first[g.traj_id] = g
    taus = np.asarray(args.taus, dtype=float)
    rows = []
    for traj, g in sorted(first.items(), key=lambda kv: (float(kv[1].stress_gpa), float(kv[1].temperature_k))):
        y_cart = torch.einsum("nij,ni->nj", g["node"].frame.double(), g["node"].y.double())
        row = {"traj_id": traj, "temperature_k": float(g.temperature_k), "stress_gpa": float(g.stress_gpa),
               "time_ps": float(g.time_ps), "dt_ps": float(g.dt_ps), "md_radial_angstrom": radial_mean(g["node"].pos, y_cart),
               "laws": {}}
        for name, model in models.items():
            curve = np.array([radial_mean(g["node"].pos, predict(model, [with_applied(g, t)], 1)[0].mean) for t in taus])
            own = radial_mean(g["node"].pos, predict(model, [g], 1)[0].mean)
            row["laws"][name] = {"radial_angstrom": own, "critical_gpa": zero_crossing(taus, curve),
                                 "radial_vs_tau_angstrom": curve.tolist()}
        rows.append(row)
    names = list(models)
    print("radial step (A per dt, outward > 0) at the run's stress, and the law's critical stress (GPa):")
    print("| loop | MD step | " + " | ".join(f"{n}: step, critical" for n in names) + " |")
    print("|---" * (len(names) + 2) + "|")
    for r in rows:
        cells = []
        for n in names:
            law = r["laws"][n]
            crit = "none" if law["critical_gpa"] is None else f"{law['critical_gpa']:.2f}"
            cells.append(f"{law['radial_angstrom']:+.2f}, {crit}")
        print(f"| {r['temperature_k']:.0f} K, {r['stress_gpa']:.2f} GPa | {r['md_radial_angstrom']:+.2f} | "
              + " | ".join(cells) + " |")
    zero = int(np.argmin(np.abs(taus)))
    print(f"\nat tau = {taus[zero]:g} GPa (line tension alone), median radial step per dt: "
          + ", ".join(f"{n} {np.median([r['laws'][n]['radial_vs_tau_angstrom'][zero] for r in rows]):+.2f} A"
                      for n in names))
    for n in names:
        crits = [r["laws"][n]["critical_gpa"] for r in rows if r["laws"][n]["critical_gpa"] is not None]
        if crits:
            print(f"{n}: critical stress {min(crits):.2f}-{max(crits):.2f} GPa over {len(crits)} loops")
    out = ROOT / "benchmarks" / "results" / "loop_critical_stress.json"
    write_json(out, {"machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M"), "taus_gpa": taus.tolist(),
                     "args": vars(args), "loops": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
