"""Which dipole training data move the dipole-to-loop error? (the limit discussed in BENCHMARKS "Shear loops")

The dipole-trained champion scores ~211% on the loops (paper: <= 20%). This runs the demo's dipole protocol (params
`dataset` angles, MD protocol, features) on another grid -- --stresses, --temperatures, and --line-nm for the
cell's length along the lines (demo: md.box.line_nm = 3 nm) -- featurizes it, trains an ensemble with the train
stage's settings (tuned widths, members, epochs) on the new graphs, with the demo's dipole graphs too unless
--new-only, and scores on all loop trajectories (single step, median % with a 90% interval over trajectories) and on
the AL fixed test dipoles (0.1-1 GPa, which none of the models trained on):
  - the registered champion (AL data, <= 1 GPa), the train stage's ensemble (demo grid, 0.25-0.5 GPa), and the
    ensemble trained here, each beside the law fitted to its training graphs.
Everything runs through the `dislomob` CLI on a params file written under --work (MD cached by content hash there,
MLflow runs in its own store), so a rerun only redoes what changed.
Writes benchmarks/results/dipole_data_<tag>.json.
Usage: .venv/bin/python benchmarks/bench_dipole_data_for_loops.py --tag stress_range --stresses 1.5 2.0
         (~15 min on 2 idle cores)
       .venv/bin/python benchmarks/bench_dipole_data_for_loops.py --tag long_lines --line-nm 12 --stresses 0.5 --new-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from dislomob.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]


def write_params(base: Config, work: Path, name: str, **updates: dict) -> Path:
    """A params file under ``work`` with section updates (dict per section) applied to ``base``."""
    data = base.model_dump(mode="json")
    for section, values in updates.items():
        data[section].update(values)
    path = work / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cli(params: Path, *args: str) -> None:
    """Run one `dislomob` command on ``params`` from the repository root (relative paths as the pipeline's)."""
    cmd = [sys.executable, "-m", "dislomob.cli", "--params", str(params), *args]
    print("$", " ".join(cmd[2:]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


def link_graphs(dirs: list[Path], out: Path) -> None:
    """``out`` holds a link to every graph file of ``dirs``."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.pt"):
        old.unlink()
    for d in dirs:
        for f in sorted(d.glob("*.pt")):
            (out / f.name).symlink_to(f.resolve())


def score(models: dict[str, tuple], test_sets: dict[str, list]) -> dict:
    """Median single-step error % with its 90% interval over trajectories, per model and law and test set."""
    from dislomob.evaluate.single_step import Evaluation, single_step_errors
    from dislomob.evaluate.stats import bootstrap_medians

    out: dict = {}
    for mname, (model, law) in models.items():
        for tname, graphs in test_sets.items():
            err = single_step_errors(Evaluation(f"{mname}_on_{tname}", model, law, graphs))
            iv = bootstrap_medians(err.percent, err.traj, [("pignn", "baseline")])
            out[f"{mname}_on_{tname}"] = {k: v.as_dict() for k, v in iv.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--tag", required=True, help="names the work folder and the results file")
    ap.add_argument("--stresses", type=float, nargs="+", required=True, help="dipole stresses of the new runs, GPa")
    ap.add_argument("--temperatures", type=float, nargs="+", default=None, help="K (default: dataset.temperatures_k)")
    ap.add_argument("--line-nm", type=float, default=None, help="cell length along the lines (default: md.box.line_nm)")
    ap.add_argument("--new-only", action="store_true", help="train on the new runs only (default: demo graphs too)")
    ap.add_argument("--work", default=None, help="default /tmp/dislomob_dipole_data_<tag>")
    args = ap.parse_args()
    import torch

    from dislomob.evaluate.models import fit_law, load_evaluated_model
    from dislomob.evaluate.test_sets import by_trajectory
    from dislomob.loop_profile import loop_config
    from dislomob.registry.champion import fixed_test_set
    from dislomob.train.data import load_graph_dir

    work = Path(args.work or f"/tmp/dislomob_dipole_data_{args.tag}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    base = load_config(ROOT / args.params)
    tracking = {"tracking_uri": f"sqlite:///{work}/mlflow.db", "experiment": f"bench-dipole-data-{args.tag}"}
    temps = list(args.temperatures or base.dataset.temperatures_k)
    box = {**base.md.box.model_dump(), **({"line_nm": args.line_nm} if args.line_nm else {})}
    high = write_params(base, work, "params_high.yaml", md={"box": box},
                        dataset={"stresses_gpa": list(args.stresses), "temperatures_k": temps,
                                 "out_dir": str(work / "md")},
                        features={"out_dir": str(work / "graphs_high")},
                        executor={"run_dir": str(work / ".parsl")})
    t0 = time.perf_counter()
    cli(high, "simulate", "--quiet")
    md_wall = time.perf_counter() - t0
    cli(high, "featurize", "--summary", str(work / "featurize_high.json"))
    link_graphs(([] if args.new_only else [ROOT / base.features.out_dir]) + [work / "graphs_high"], work / "graphs_all")
    aug = write_params(base, work, "params_aug.yaml", md={"box": box}, features={"out_dir": str(work / "graphs_all")},
                       train={**tracking, "model_dir": str(work / "models_aug")},
                       executor={"run_dir": str(work / ".parsl")})
    cli(aug, "train", "--metrics", str(work / "train_aug.json"), "--quiet")

    torch.set_num_threads(2)
    aug_cfg = load_config(aug)
    pools = {"demo": by_trajectory(load_graph_dir(ROOT / base.features.out_dir)),
             "aug": by_trajectory(load_graph_dir(work / "graphs_all"))}
    os.chdir(ROOT)
    champion = load_evaluated_model(base, "champion")
    demo = load_evaluated_model(base, "train")
    augmented = load_evaluated_model(aug_cfg, "train", train_dir=work / "models_aug")
    for t, g in by_trajectory(load_graph_dir(ROOT / "data/al/graphs")).items():  # the champion trained on AL runs too
        pools["demo"].setdefault(t, g)
    models = {}
    for name, em, pool in (("champion", champion, pools["demo"]), ("demo_grid", demo, pools["demo"]),
                           (f"trained_here_{args.tag}", augmented, pools["aug"])):
        law, _ = fit_law([g for t in em.train_ids for g in pool[t]], base.train.baseline_steps)
        models[name] = (em.model, law)
    loops = loop_config(base)
    loop_pool = by_trajectory(load_graph_dir(ROOT / loops.loops.graphs_dir))
    al_test = fixed_test_set(base, "data/al/md", "data/al/graphs")[0]
    seen = set(champion.seen_ids) | set(demo.seen_ids) | set(augmented.seen_ids)
    al_test = {t: g for t, g in al_test.items() if t not in seen}
    tests = {"all_loops": [g for t in sorted(loop_pool) for g in loop_pool[t]],
             "al_test_dipoles": [g for t in sorted(al_test) for g in al_test[t]]}
    results = score(models, tests)
    feat = json.loads((work / "featurize_high.json").read_text())
    print(f"\nnew dipoles: {feat.get('n_graphs')} graphs from {feat.get('n_trajectories')} trajectories "
          f"(MD {md_wall:.0f} s wall); ensemble trained here on {len(augmented.train_ids)} trajectories")
    print("\n| model (training stresses) | test set | PI-GNN % [90%] | fitted law % [90%] | paired difference |")
    print("|---|---|---|---|---|")
    for key, r in results.items():
        p, b, d = r["pignn"], r["baseline"], r["pignn_minus_baseline"]
        print(f"| {key.split('_on_')[0]} | {key.split('_on_')[1]} ({p['n_trajectories']} traj, {p['n_values']} graphs) | "
              f"{p['median']:.1f} [{p['low']:.1f}, {p['high']:.1f}] | {b['median']:.1f} [{b['low']:.1f}, {b['high']:.1f}] | "
              f"{d['median']:+.1f} [{d['low']:.1f}, {d['high']:.1f}] |")
    out = ROOT / "benchmarks" / "results" / f"dipole_data_{args.tag}.json"
    from dislomob.atomic import write_json

    from dislomob.md.trajectory import read_meta

    runs = [read_meta(p) for p in sorted((work / "md").glob("*.h5"))]
    md_runs = [{"key": m.key, "temperature_k": m.temperature_k, "stress_gpa": m.stress_gpa, "angle_deg": m.angle_deg,
                "status": m.status, "n_atoms": m.n_atoms, "wall_time_s": m.wall_time_s} for m in runs]
    print(f"MD runs: {len(runs)}, {min(m.n_atoms for m in runs)}-{max(m.n_atoms for m in runs)} atoms, "
          f"{min(m.wall_time_s for m in runs):.0f}-{max(m.wall_time_s for m in runs):.0f} s of one core each")
    write_json(out, {"machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M"), "args": vars(args),
                     "md_wall_s": md_wall, "md_runs": md_runs, "featurize_high": feat, "results": results,
                     "train_trajectories": {"champion": champion.train_ids, "demo_grid": demo.train_ids,
                                            f"trained_here_{args.tag}": augmented.train_ids}})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
