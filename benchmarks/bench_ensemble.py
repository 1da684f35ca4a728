"""Ensemble training step: M members vectorized in one pass vs M single-member models one after another.

Both variants run the same math (HeteroSAGE 2 x 20 per net, F/B/E, symmetric loss, Adam step) on the
same batch of analytic graphs (~50 nodes and ~100 Gauss points each). Prints medians in ms per
training step and the speedup, plus inference graphs per second of the vectorized ensemble.

    python benchmarks/bench_ensemble.py --members 20 --batch 32 --threads 2 [--graphs-dir data/graphs]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dislomob import graph_schema as S  # noqa: E402
from dislomob.model.loss import displacement_loss  # noqa: E402
from dislomob.features.invariants import graph_features  # noqa: E402
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams  # noqa: E402
from model_helpers import straight_graph  # noqa: E402


def graphs(n_graphs: int, nodes: int) -> list:
    """Analytic wavy lines at varied character, stress and temperature."""
    return [straight_graph(5.0 + 170.0 * k / max(n_graphs - 1, 1), 0.2 + 0.05 * (k % 10), 300.0 + 50.0 * (k % 7),
                           n=nodes, wiggle=2.0, traj_id=f"b{k}") for k in range(n_graphs)]


def make(members: int, seed: int, g, width: int, depth: int,
         device: torch.device = torch.device("cpu")) -> tuple[EnsemblePIGNN, torch.optim.Optimizer]:
    hp = PIGNNHParams(members=members, width=width, depth=depth, seed=seed)
    model = EnsemblePIGNN(hp)
    model.fit_scales(*graph_features(g), speed_rms=2.0, force_rms=0.4)
    model.to(device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def step(model: EnsemblePIGNN, opt: torch.optim.Optimizer, batch) -> None:
    opt.zero_grad()
    displacement_loss(batch, model(batch)["dx"]).mean(-1).sum().backward()
    opt.step()


def timed(fn, repeats: int, warmup: int = 2) -> float:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--width", type=int, default=20)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--graphs-dir", default=None, help="featurized graph files (*.pt) instead of analytic lines")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.graphs_dir:
        from dislomob.train.data import load_graph_dir

        data = load_graph_dir(args.graphs_dir)[: args.batch]
    else:
        data = graphs(args.batch, args.nodes)
    dev = torch.device(args.device)
    batch = next(iter(DataLoader(data, batch_size=args.batch))).to(dev)
    g = data[0]
    ens, ens_opt = make(args.members, 0, g, args.width, args.depth, dev)
    singles = [make(1, m + 1, g, args.width, args.depth, dev) for m in range(args.members)]
    t_vec = timed(lambda: step(ens, ens_opt, batch), args.repeats)
    t_seq = timed(lambda: [step(m, o, batch) for m, o in singles], max(3, args.repeats // 3))
    with torch.no_grad():
        t_inf = timed(lambda: ens(batch), args.repeats)
    gpu = f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else ""
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}{gpu}, torch {torch.__version__}, "
          f"threads {args.threads}")
    print(f"batch: {args.batch} graphs, {batch[S.NODE].num_nodes} nodes, {batch[S.GP].num_nodes} GPs; "
          f"members {args.members}; HeteroSAGE {args.depth} x {args.width} per net")
    print(f"training step, vectorized ensemble: {t_vec:.1f} ms (median)")
    print(f"training step, {args.members} single models in sequence: {t_seq:.1f} ms (median)")
    print(f"speedup: {t_seq / t_vec:.2f}x")
    print(f"inference (all members): {t_inf:.1f} ms per batch = {args.batch / t_inf * 1e3:.0f} graphs/s")


if __name__ == "__main__":
    main()
