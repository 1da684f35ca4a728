"""Physics checks of the trained demo law and of the fitted baseline law on straight dipoles built like the
demo cells (dislomob.model.consistency), with the speed tables behind them.

Reads the pipeline's params and outputs (``models/train/ensemble.pt``, ``models/train/baseline.json``);
prints one JSON object: metrics per law, speed against temperature at 0.5 GPa and against node spacing.

With ``--ablate-bootstrap`` it also trains the same ensemble (same params, data, split and seed) without
the per-member bootstrap of training trajectories and reports its checks and validation loss beside.

Usage: python benchmarks/bench_consistency.py [--params params.yaml] [--model-dir models/train]
       [--graphs-dir data/graphs] [--ablate-bootstrap]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from dislomob.config import load_config
from dislomob.model.consistency import consistency_checks
from dislomob.model.ensemble import load_ensemble
from dislomob.model.phenomenological import load_baseline


def _ablate_bootstrap(cfg, graphs_dir: Path, law) -> dict:
    """Consistency metrics and validation figures (members' and ensemble-mean loss in Angstrom, median
    relative error, relative spread) with and without bootstrap; the test trajectories are not used."""
    import tempfile

    import numpy as np

    from dislomob.train.evaluate import predict_graphs
    from dislomob.train.data import load_graph_dir
    from dislomob.train.stage import train_ensemble

    graphs = load_graph_dir(graphs_dir)
    res = {}
    for flag in (True, False):
        tc = cfg.train.model_copy(update={"bootstrap": flag})
        with tempfile.TemporaryDirectory() as tmp:
            r = train_ensemble(graphs, tc, cfg.seed, tmp, progress=False)
        val = torch.tensor(r.val_loss)[r.model.active]
        p = predict_graphs(r.model, law, r.data.sets["val"])
        res[f"bootstrap_{str(flag).lower()}"] = {
            "val_loss_selected_mean_angstrom": float(val.mean()),
            "val_ensemble_mean_loss_angstrom": float(p["loss"].mean()),
            "val_ensemble_error_median": float(np.median(p["err"])),
            "val_uncertainty_rel": float(p["sigma"].mean() / max(p["mu"].mean(), 1e-12)),
            **consistency_checks(r.model, cfg)["metrics"]}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--graphs-dir", default=None)
    ap.add_argument("--ablate-bootstrap", action="store_true")
    args = ap.parse_args()
    cfg = load_config(args.params)
    torch.set_num_threads(cfg.train.threads)
    model_dir = Path(args.model_dir or cfg.train.model_dir)
    model, _ = load_ensemble(model_dir / "ensemble.pt")
    law = load_baseline(model_dir / "baseline.json")
    t0 = time.perf_counter()
    out = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}",
           "pignn": consistency_checks(model, cfg), "fitted_law": consistency_checks(law, cfg)}
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.ablate_bootstrap:
        out["bootstrap_ablation"] = _ablate_bootstrap(cfg, Path(args.graphs_dir or cfg.features.out_dir), law)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
