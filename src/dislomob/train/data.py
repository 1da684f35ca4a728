"""Graphs for training: reading graph files, a seeded split by trajectory, a LightningDataModule."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

SPLITS = ("train", "test", "val")


def load_graph_dir(graphs_dir: str | Path) -> list[HeteroData]:
    """All graphs of every ``*.pt`` graph file in ``graphs_dir`` (sorted by file name)."""
    from dislomob.features.graphs import load_graphs

    d = Path(graphs_dir)
    files = sorted(d.glob("*.pt"))
    if not files:
        raise FileNotFoundError(f"no graph files (*.pt) in {d}")
    graphs = [g for f in files for g in load_graphs(f)]
    if not graphs:
        raise ValueError(f"graph files in {d} hold no graphs")
    return graphs


def split_by_trajectory(traj_ids: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, list[str]]:
    """Trajectory ids shuffled with ``seed`` and cut into train/test/val by ``fractions``; each part gets >= 1."""
    ids = sorted(set(traj_ids))
    if len(ids) < 3:
        raise ValueError(f"a train/test/val split by trajectory needs >= 3 trajectories, got {len(ids)}: {ids}")
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    n_test = max(1, int(round(fractions[1] * len(ids))))
    n_val = max(1, int(round(fractions[2] * len(ids))))
    n_train = len(ids) - n_test - n_val
    if n_train < 1:
        raise ValueError(f"split {list(fractions)} of {len(ids)} trajectories leaves no training trajectory")
    return {"train": order[:n_train], "test": order[n_train:n_train + n_test], "val": order[n_train + n_test:]}


def split_graphs(graphs: list[HeteroData], parts: dict[str, list[str]]) -> dict[str, list[HeteroData]]:
    """Graphs grouped by the split of their ``traj_id``."""
    where = {t: name for name, ids in parts.items() for t in ids}
    out: dict[str, list[HeteroData]] = {name: [] for name in SPLITS}
    for g in graphs:
        out[where[str(g.traj_id)]].append(g)
    return out


class GraphDataModule(pl.LightningDataModule):
    """Train/val/test loaders of graph_schema graphs split by trajectory (seeded shuffling of training batches)."""

    def __init__(self, graphs: list[HeteroData], fractions: tuple[float, float, float], batch_size: int, seed: int):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: allowed >= 1")
        self.parts = split_by_trajectory([str(g.traj_id) for g in graphs], fractions, seed)
        self.sets = split_graphs(graphs, self.parts)
        self.batch_size, self.seed = batch_size, seed

    def train_dataloader(self) -> DataLoader:
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.sets["train"], batch_size=self.batch_size, shuffle=True, generator=gen)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["val"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["test"], batch_size=self.batch_size)
