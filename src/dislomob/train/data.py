"""Graphs for training: reading graph files, a seeded split by trajectory, a LightningDataModule."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from torch_geometric.data import HeteroData
from torch_geometric.loader import DataLoader

from dislomob.train.buckets import bucket_of

SPLITS = ("train", "test", "val")


def load_graph_dir(graphs_dir: str | Path) -> list[HeteroData]:
    """All graphs of every ``*.pt`` graph file in ``graphs_dir`` (sorted by file name)."""
    from dislomob.features.graphs import load_graphs

    from dislomob.errors import InputFileError

    d = Path(graphs_dir)
    if not d.is_dir():
        raise InputFileError(f"graph folder {d} not found; run `dislomob featurize` first")
    files = sorted(d.glob("*.pt"))
    if not files:
        raise InputFileError(f"no graph files (*.pt) in {d}; run `dislomob featurize` first")
    graphs, bad = [], []
    for f in files:  # read every file so that the error names all damaged ones at once
        try:
            graphs.extend(load_graphs(f))
        except InputFileError as err:
            bad.append(str(err))
    if bad:
        raise InputFileError(f"{len(bad)} of {len(files)} graph files in {d} unreadable: " + " | ".join(bad))
    if not graphs:
        raise InputFileError(f"graph files in {d} hold no graphs")
    return graphs


def split_by_trajectory(traj_ids: list[str], fractions: tuple[float, float, float], seed: int,
                        groups: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Trajectory ids cut into train/test/val by ``fractions``, seeded; each part gets >= 1.

    With ``groups`` (trajectory -> group, e.g. character bucket) the split is stratified: test and
    val trajectories are taken round robin over the groups (the group with most trajectories left
    first), so each group of >= 3 trajectories has one in test (the test part grows to the number of
    such groups when ``fractions`` would give fewer) and no group loses its last training trajectory.
    """
    ids = sorted(set(traj_ids))
    if len(ids) < 3:
        raise ValueError(f"a train/test/val split by trajectory needs >= 3 trajectories, got {len(ids)}: {ids}")
    rng = np.random.default_rng(seed)
    group_of = {t: (groups or {}).get(t, "") for t in ids}
    names = sorted(set(group_of.values()))
    left = {g: [ids[i] for i in rng.permutation(len(ids)) if group_of[ids[i]] == g] for g in names}
    tie = {g: float(v) for g, v in zip(names, rng.random(len(names)))}
    n_test = max(1, int(round(fractions[1] * len(ids))), sum(len(v) >= 3 for v in left.values()))
    n_val = max(1, int(round(fractions[2] * len(ids))))
    if n_test + n_val >= len(ids):
        raise ValueError(f"split {list(fractions)} of {len(ids)} trajectories leaves no training trajectory")
    parts: dict[str, list[str]] = {"test": [], "val": []}
    for part, n in (("test", n_test), ("val", n_val)):
        taken = dict.fromkeys(names, 0)
        for _ in range(n):
            # round robin over the groups (fewest taken first, then most left); >= 2 left keeps one for training
            ok = [g for g in names if len(left[g]) >= 2] or [g for g in names if left[g]]
            g = min(ok, key=lambda k: (taken[k], -len(left[k]), tie[k]))
            taken[g] += 1
            parts[part].append(left[g].pop(0))
    train = [t for g in names for t in left[g]]
    return {"train": sorted(train), "test": sorted(parts["test"]), "val": sorted(parts["val"])}


def split_graphs(graphs: list[HeteroData], parts: dict[str, list[str]]) -> dict[str, list[HeteroData]]:
    """Graphs grouped by the split of their ``traj_id``."""
    where = {t: name for name, ids in parts.items() for t in ids}
    out: dict[str, list[HeteroData]] = {name: [] for name in SPLITS}
    for g in graphs:
        out[where[str(g.traj_id)]].append(g)
    return out


class GraphDataModule(pl.LightningDataModule):
    """Train/val/test loaders of graph_schema graphs split by trajectory, stratified by character bucket
    (seeded shuffling of training batches), or by a given split ``parts`` (trajectory ids per part; graphs
    of trajectories in no part are left out)."""

    def __init__(self, graphs: list[HeteroData], fractions: tuple[float, float, float], batch_size: int, seed: int,
                 parts: dict[str, list[str]] | None = None):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: allowed >= 1")
        if parts is None:
            groups = {str(g.traj_id): bucket_of(float(g.angle_deg.reshape(-1)[0])) for g in graphs}
            self.parts = split_by_trajectory(list(groups), fractions, seed, groups)
        else:
            self.parts = {name: sorted(parts.get(name, [])) for name in SPLITS}
            if not self.parts["train"] or not self.parts["val"]:
                raise ValueError(f"a given split needs train and val trajectories: got {self.parts}")
            graphs = [g for g in graphs if any(str(g.traj_id) in ids for ids in self.parts.values())]
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
