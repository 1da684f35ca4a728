"""Log an ensemble as the pyfunc law model (models from code) into the active MLflow run.

Artifacts: the ensemble file as saved (weights_only-loadable) and the law config JSON; the model code is
dislomob/registry/model_code.py; signature inferred from the example network and the law's output on it;
the input example is that network. Requirements are pinned to the versions running now.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from dislomob.config import Config
from dislomob.registry.law_config import write_law_config
from dislomob.registry.pyfunc import ARTIFACT_ENSEMBLE, ARTIFACT_LAW_CONFIG, networks_frame, velocities_frame

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

MODEL_CODE = Path(__file__).with_name("model_code.py")
MODEL_NAME_IN_RUN = "law"
ENSEMBLE_FILE = "ensemble.pt"
LAW_CONFIG_FILE = "law_config.json"


def requirements() -> list[str]:
    """Pinned pip requirements of the pyfunc model (the distributions it imports, at their installed versions)."""
    out = []
    for dist in ("dislomob", "torch", "torch-geometric", "mlflow", "numpy", "pandas", "pydantic", "PyYAML", "scipy"):
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        out.append(f"{dist}=={version.split('+')[0]}")
    return out


def log_law_model(ensemble_path: str | Path, cfg: Config, example_network: str | Path) -> ModelInfo:
    """Log the law (ensemble file + ``cfg``'s material and features) as a pyfunc model in the active run;
    return its ModelInfo."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from dislomob.ddd.law import MobilityLaw

    text = Path(example_network).read_text()
    with tempfile.TemporaryDirectory(prefix="dislomob-register-") as tmp:
        ens = Path(tmp) / ENSEMBLE_FILE
        shutil.copyfile(ensemble_path, ens)
        conf = Path(tmp) / LAW_CONFIG_FILE
        write_law_config(cfg, conf)
        law = MobilityLaw.from_artifacts(ens, conf)
        example = networks_frame([text])
        with warnings.catch_warnings():  # network and node are int64 on purpose: indices are never missing
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
            signature = infer_signature(example, velocities_frame(law, [text]))
        return mlflow.pyfunc.log_model(name=MODEL_NAME_IN_RUN, python_model=str(MODEL_CODE),
                                       artifacts={ARTIFACT_ENSEMBLE: str(ens), ARTIFACT_LAW_CONFIG: str(conf)},
                                       signature=signature, input_example=example, pip_requirements=requirements())


def model_artifact_paths(local_model_dir: str | Path) -> dict[str, Path]:
    """Local paths of the ``ensemble`` and ``law_config`` artifacts of a downloaded pyfunc law model."""
    from mlflow.models import Model

    from dislomob.errors import InputFileError

    local = Path(local_model_dir)
    flavor = Model.load(str(local)).flavors.get("python_function", {})
    arts = flavor.get("artifacts") or {}
    missing = [a for a in (ARTIFACT_ENSEMBLE, ARTIFACT_LAW_CONFIG) if a not in arts]
    if missing:
        raise InputFileError(f"{local}: not a dislomob law model (pyfunc artifacts {sorted(arts)} lack {missing})")
    return {a: local / arts[a]["path"] for a in (ARTIFACT_ENSEMBLE, ARTIFACT_LAW_CONFIG)}
