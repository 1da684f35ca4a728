"""Shared helpers of the DDD tests: an untrained float64 law saved the way trained ones are."""

from __future__ import annotations

from pathlib import Path

import torch

from dislomob.config import Config
from dislomob.ddd.network import read_network
from dislomob.ddd.network_graph import network_graph
from dislomob.features.invariants import graph_features
from dislomob.model.ensemble import save_ensemble
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams

DIPOLE_FILE = Path(__file__).resolve().parents[1] / "examples" / "networks" / "dipole_fe.json"


def untrained_law_file(directory: Path, members: int, seed: int, cfg: Config | None = None) -> Path:
    """An untrained float64 ensemble (feature scales fitted on the sample dipole's graph, not trained)
    saved with save_ensemble to ``directory/ensemble.pt``."""
    model = EnsemblePIGNN(PIGNNHParams(members=members, width=5, seed=seed)).double()
    node_x, gp_x = graph_features(network_graph(read_network(DIPOLE_FILE), cfg or Config()).graph, torch.float64)
    model.fit_scales(node_x, gp_x, speed_rms=15.0, force_rms=0.4)
    path = Path(directory) / "ensemble.pt"
    save_ensemble(model, path)
    return path
