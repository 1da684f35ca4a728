"""Shared helpers of the DDD tests: an untrained float64 law saved the way trained ones are."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from dislomob.config import Config
from dislomob.ddd.network import DislocationNetwork, read_network
from dislomob.ddd.network_graph import network_graph
from dislomob.features.invariants import graph_features
from dislomob.model.ensemble import save_ensemble
from dislomob.model.pignn import EnsemblePIGNN, PIGNNHParams

DIPOLE_FILE = Path(__file__).resolve().parents[1] / "examples" / "networks" / "dipole_fe.json"


def untrained_law_file(directory: Path, members: int, seed: int, cfg: Config | None = None,
                       widths: tuple[int, int, int] | None = None) -> Path:
    """An untrained float64 ensemble (feature scales fitted on the sample dipole's graph, not trained)
    saved with save_ensemble to ``directory/ensemble.pt``; ``widths``: per-net F/B/E widths (None: 5 each)."""
    per_net = dict(zip(("width_f", "width_b", "width_e"), widths)) if widths else {}
    model = EnsemblePIGNN(PIGNNHParams(members=members, width=5, seed=seed, **per_net)).double()
    node_x, gp_x = graph_features(network_graph(read_network(DIPOLE_FILE), cfg or Config()).graph, torch.float64)
    model.fit_scales(node_x, gp_x, speed_rms=15.0, force_rms=0.4)
    path = Path(directory) / "ensemble.pt"
    save_ensemble(model, path)
    return path


def rotated(net: DislocationNetwork, rot: np.ndarray) -> DislocationNetwork:
    """The whole network turned by the rotation ``rot``: vectors, cell rows, stress tensors."""
    def vec(a):
        return None if a is None else a @ rot.T

    def ten(a):
        return None if a is None else rot @ a @ rot.T if a.ndim == 2 else np.einsum("ij,qjk,lk->qil", rot, a, rot)

    return dataclasses.replace(net, positions_angstrom=vec(net.positions_angstrom),
                               burgers_angstrom=vec(net.burgers_angstrom), normals=vec(net.normals),
                               cell_angstrom=vec(net.cell_angstrom), applied_stress_gpa=ten(net.applied_stress_gpa),
                               quad_positions_angstrom=vec(net.quad_positions_angstrom),
                               quad_stress_gpa=ten(net.quad_stress_gpa))
