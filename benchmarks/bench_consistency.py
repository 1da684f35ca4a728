"""Physics checks of the trained demo law and of the fitted baseline law on straight dipoles built like the
demo cells (dislomob.model.consistency), with the speed tables behind them.

Reads the pipeline's params and outputs (``models/train/ensemble.pt``, ``models/train/baseline.json``);
prints one JSON object: metrics per law, speed against temperature at 0.5 GPa and against node spacing.

Usage: python benchmarks/bench_consistency.py [--params params.yaml] [--model-dir models/train]
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
from dislomob.train.stage import load_baseline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model-dir", default=None)
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
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
