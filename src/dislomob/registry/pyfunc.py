"""The mobility law as an MLflow pyfunc model: networks in, nodal velocities (m/s) and their spread (m/s) out.

Input: a DataFrame with one string column ``network``, each row the JSON text of one dislocation network in
the format of docs/ddd_network_format.md. Output: a DataFrame with one row per node of every input network:
``network`` (row index of the input), ``node`` (index in that network), ``vx_m_per_s``, ``vy_m_per_s``,
``vz_m_per_s`` (velocity in the network's axes, m/s) and ``sigma_m_per_s`` (ensemble spread, m/s), exactly
:meth:`dislomob.ddd.law.MobilityLaw.velocities`.

The model is logged "from code" (dislomob/registry/model_code.py): nothing is pickled. Its two artifacts are
the ensemble file (save_ensemble: hyperparameters and a state dict, read with ``weights_only=True``) and the
law config JSON (dislomob.registry.law_config); :meth:`MobilityLawModel.load_context` rebuilds the
:class:`~dislomob.ddd.law.MobilityLaw` from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from dislomob.errors import InputFileError

INPUT_COLUMN = "network"
OUTPUT_COLUMNS = ("network", "node", "vx_m_per_s", "vy_m_per_s", "vz_m_per_s", "sigma_m_per_s")
ARTIFACT_ENSEMBLE = "ensemble"
ARTIFACT_LAW_CONFIG = "law_config"


def networks_frame(texts: list[str]) -> pd.DataFrame:
    """The pyfunc input for network JSON texts (one row per network)."""
    return pd.DataFrame({INPUT_COLUMN: list(texts)})


def velocities_frame(law: Any, texts: list[str]) -> pd.DataFrame:
    """The pyfunc output of ``law`` (a MobilityLaw) for network JSON texts: one row per node (module docstring)."""
    from dislomob.ddd.network import network_from_dict

    parts = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputFileError(f"{INPUT_COLUMN}[{i}] is a {type(text).__name__}: expected the JSON text of a network")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputFileError(f"{INPUT_COLUMN}[{i}]: not valid JSON at line {err.lineno} column {err.colno}: "
                                 f"{err.msg}") from None
        try:
            network = network_from_dict(data)
        except InputFileError as err:
            raise InputFileError(f"{INPUT_COLUMN}[{i}]: {err}") from None
        velocity, sigma = law.velocities(network)
        n = network.n_nodes
        parts.append(pd.DataFrame({"network": np.full(n, i, dtype=np.int64), "node": np.arange(n, dtype=np.int64),
                                   "vx_m_per_s": velocity[:, 0], "vy_m_per_s": velocity[:, 1],
                                   "vz_m_per_s": velocity[:, 2], "sigma_m_per_s": sigma}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=np.int64 if c in ("network", "node") else np.float64)
                             for c in OUTPUT_COLUMNS})
    return pd.concat(parts, ignore_index=True)


class MobilityLawModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper of :class:`dislomob.ddd.law.MobilityLaw` (float64), rebuilt from its artifacts."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Rebuild the law from the ``ensemble`` and ``law_config`` artifacts (weights_only load, no pickle)."""
        from dislomob.ddd.law import MobilityLaw

        arts = context.artifacts
        self.law = MobilityLaw.from_artifacts(Path(arts[ARTIFACT_ENSEMBLE]), Path(arts[ARTIFACT_LAW_CONFIG]))

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Nodal velocities (m/s) and spread (m/s) of every network in ``model_input[\"network\"]``."""
        if not isinstance(model_input, pd.DataFrame) or INPUT_COLUMN not in model_input.columns:
            raise InputFileError(f"model input must be a DataFrame with a string column {INPUT_COLUMN!r} "
                                 f"(network JSON text), got {type(model_input).__name__}")
        return velocities_frame(self.law, model_input[INPUT_COLUMN].tolist())
