"""The learned mobility law as DDD codes call it: nodal velocities (m/s) of a dislocation network.

Contract of :meth:`MobilityLaw.velocities` for a :class:`dislomob.ddd.network.DislocationNetwork` of n nodes:

- ``velocity`` (n, 3) float64, m/s, Cartesian in the network's own axes, row i for network node i: the mean over
  the ensemble's active members of the predicted nodal displacement (Angstrom) divided by the graph's time step
  ``features.dt_ps`` (ps), times 100 (1 Angstrom/ps = 100 m/s). The model's displacement is proportional to dt,
  so the velocity does not depend on it.
- ``sigma`` (n,) float64, m/s: the spread of the members' velocities about that mean, sqrt(sum over x, y, z of
  the members' variance) (the norm of the standard deviation vector, as in the project's relative uncertainty);
  a scalar, so it is the same in any axes.
- Pinned nodes (``NODE_PINNED``) get velocity 0 and sigma 0.
- Every node must have exactly two arms (closed loops, periodic lines); a junction or a line end raises
  :class:`dislomob.ddd.network_graph.UnsupportedNetworkError` naming the node. The stress is the DDD code's
  quadrature stress when the network carries it, else the network's own non-singular stress plus the applied
  stress (dislomob.ddd.network_graph says how).

Everything goes through the project's one prediction function, :func:`dislomob.model.predict.predict`.
A law comes from an ensemble file (:meth:`MobilityLaw.from_path`, with the config it was trained with), from an
ensemble file and its law config JSON (:meth:`MobilityLaw.from_artifacts`) or from the MLflow Model Registry
(:meth:`MobilityLaw.from_registry`, ``models:/<name>@champion``: the registered pyfunc model, dislomob.registry).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dislomob.config import Config
from dislomob.ddd.network import NODE_PINNED, DislocationNetwork, read_network
from dislomob.ddd.network_graph import NetworkGraph, network_graph
from dislomob.model.consistency import ANGSTROM_PER_PS_TO_M_PER_S
from dislomob.model.ensemble import load_ensemble
from dislomob.model.laws import only_active
from dislomob.model.predict import predict


class MobilityLaw:
    """A trained law (any registered law, dislomob.model.laws: the PI-GNN ensemble's active members, the fitted
    law) with the featurization settings it was trained with; m/s.

    ``cfg`` must be the configuration the ensemble was trained with (its ``material`` and ``features``: elastic
    constants, core width, images, Gauss points, dt); the default is the project's default (demo) profile.
    The model runs in ``dtype`` (float64 by default: DDD codes integrate the velocities).
    """

    def __init__(self, model: torch.nn.Module, cfg: Config | None = None, dtype: torch.dtype = torch.float64):
        model = only_active(model) if hasattr(type(model), "LAW_NAME") else model
        self.model = model.to(dtype).eval()
        self.cfg = cfg if cfg is not None else Config()
        self.dtype = dtype

    @classmethod
    def from_path(cls, path: str | Path, cfg: Config | None = None, dtype: torch.dtype = torch.float64) -> MobilityLaw:
        """The law of an ensemble file written by ``save_ensemble`` (e.g. models/train/ensemble.pt)."""
        model, _ = load_ensemble(path)
        return cls(model, cfg, dtype)

    @classmethod
    def from_artifacts(cls, ensemble_path: str | Path, law_config_path: str | Path,
                       dtype: torch.dtype = torch.float64) -> MobilityLaw:
        """The law of an ensemble file and the law config JSON saved beside it (dislomob.registry.law_config:
        the material and features settings it was trained with)."""
        from dislomob.registry.law_config import read_law_config

        return cls.from_path(ensemble_path, read_law_config(law_config_path), dtype)

    @classmethod
    def from_registry(cls, uri: str, registry_uri: str | None = None,
                      dtype: torch.dtype = torch.float64) -> MobilityLaw:
        """The law registered under ``uri`` (``models:/<name>@<alias>`` or ``models:/<name>/<version>``) in the
        MLflow registry ``registry_uri`` (default: MLflow's, i.e. ``MLFLOW_TRACKING_URI``), loaded through its
        pyfunc model with the featurization settings it was registered with; an unknown model, alias or version
        raises :class:`dislomob.registry.client.RegistryError` saying what the registry holds."""
        import tempfile

        import mlflow.pyfunc

        from dislomob.registry.client import download_model

        if registry_uri is None:
            registry_uri = mlflow.get_registry_uri()
        with tempfile.TemporaryDirectory(prefix="dislomob-law-") as tmp:
            local = download_model(uri, registry_uri, tmp)
            law = mlflow.pyfunc.load_model(str(local)).unwrap_python_model().law
        return law if dtype == law.dtype else cls(law.model, law.cfg, dtype)

    def graph(self, network: DislocationNetwork) -> NetworkGraph:
        """The graph the law predicts on, with its map back to the network's nodes."""
        return network_graph(network, self.cfg, self.dtype)

    def velocities(self, network: DislocationNetwork) -> tuple[np.ndarray, np.ndarray]:
        """(velocity (n, 3) m/s, sigma (n,) m/s) of every node of ``network`` (contract in the module docstring)."""
        ng = self.graph(network)
        pred = predict(self.model, [ng.graph])[0]
        scale = ANGSTROM_PER_PS_TO_M_PER_S / self.cfg.features.dt_ps
        velocity = np.zeros((network.n_nodes, 3))
        sigma = np.zeros(network.n_nodes)
        velocity[ng.node_of] = pred.mean.double().numpy() * scale
        sigma[ng.node_of] = pred.var.double().sum(-1).clamp_min(0.0).sqrt().numpy() * scale
        if network.node_flags is not None:
            pinned = (network.node_flags & NODE_PINNED) != 0
            velocity[pinned] = 0.0
            sigma[pinned] = 0.0
        return velocity, sigma


def predict_network_file(model_path: str | Path, network_path: str | Path, cfg: Config | None = None,
                         registry_uri: str | None = None) -> dict[str, Any]:
    """Velocities (m/s) and their spread (m/s) of the nodes of a network file (docs/ddd_network_format.md) under
    the ensemble file ``model_path`` (featurized with ``cfg``) or the registered model ``models:/...`` (in
    ``registry_uri``; featurized with the settings it was registered with), as a JSON-ready dict (what
    ``dislomob predict`` prints)."""
    if str(model_path).startswith("models:/"):
        law = MobilityLaw.from_registry(str(model_path), registry_uri)
    else:
        law = MobilityLaw.from_path(model_path, cfg)
    network = read_network(network_path)
    velocity, sigma = law.velocities(network)
    return {"model": str(model_path), "network": str(network_path), "n_nodes": network.n_nodes,
            "temperature_k": network.temperature_k,
            "stress_source": "quadrature" if network.has_quadrature_stress else "internal",
            "units": {"velocity": "m/s", "sigma": "m/s"},
            "velocity_m_per_s": velocity.tolist(), "sigma_m_per_s": sigma.tolist()}
