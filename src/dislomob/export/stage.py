"""The ``export`` stage: the champion ensemble -> models/export/law.pt2, checked in C++ against Python.

Model: ``--model`` or, by default, the registered champion (models/register/ensemble.pt) when the register
stage has written it, else models/train/ensemble.pt. Its featurization settings come from the
``law_config.json`` beside it when there is one (the registered law config), else from params.yaml.
Beside the package: ``<network stem>_input.txt``, the sample network in the C++ example's input format.
Metrics (metrics/export.json): export and compile times (s), C++ build time (s), and the largest difference
(m/s) between the C++ example and MobilityLaw.velocities on the sample network.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dislomob.atomic import write_json
from dislomob.config import Config
from dislomob.ddd.network import read_network
from dislomob.errors import InputFileError
from dislomob.export.contract import export_inputs
from dislomob.export.cpp_check import compare_with_python
from dislomob.export.package import export_law
from dislomob.export.textio import write_input

REGISTERED_ENSEMBLE = Path("models/register/ensemble.pt")
TRAINED_ENSEMBLE = Path("models/train/ensemble.pt")
LAW_CONFIG_NAME = "law_config.json"
SAMPLE_NETWORK = Path("examples/networks/dipole_fe.json")


def default_model() -> Path:
    """The registered champion's ensemble file when present, else the trained ensemble file."""
    return REGISTERED_ENSEMBLE if REGISTERED_ENSEMBLE.is_file() else TRAINED_ENSEMBLE


def law_settings(model: Path, params_cfg: Config) -> tuple[Config, str]:
    """(config the law predicts with, where it came from): the law config beside ``model`` or params.yaml."""
    beside = model.parent / LAW_CONFIG_NAME
    if beside.is_file():
        from dislomob.registry.law_config import read_law_config

        return read_law_config(beside), str(beside)
    return params_cfg, "params.yaml"


def export_stage(params_cfg: Config, model: str | Path | None, out: str | Path, metrics_path: str | Path,
                 network_path: str | Path = SAMPLE_NETWORK, cpp_check: bool = True) -> dict[str, Any]:
    """Export the law to ``out`` (.pt2), check the C++ example on ``network_path``, write the metrics JSON."""
    t0 = time.perf_counter()
    model = Path(model) if model is not None else default_model()
    if not model.is_file():
        raise InputFileError(f"export: ensemble file {model} not found (run train or register first, or give --model)")
    cfg, cfg_source = law_settings(model, params_cfg)
    network = read_network(network_path)
    inputs = export_inputs(network, cfg)
    info = export_law(model, cfg, out, inputs)
    sample = Path(out).with_name(Path(network_path).stem + "_input.txt")
    write_input(sample, inputs)  # what examples/cpp reads: `dislomob_velocities law.pt2 <sample>`
    metrics: dict[str, Any] = {"model": str(model), "law_config": cfg_source, "package": str(out),
                               "export_seconds": round(info["export_seconds"], 2),
                               "compile_seconds": round(info["compile_seconds"], 2),
                               "members": info["members"], "active_members": info["active_members"],
                               "check_network": str(network_path), "check_nodes": network.n_nodes,
                               "cpp_input": str(sample)}
    if cpp_check:
        cmp = compare_with_python(out, model, network, cfg)
        metrics.update({k: cmp[k] for k in ("max_abs_diff_velocity_m_per_s", "max_abs_diff_sigma_m_per_s",
                                            "max_abs_velocity_m_per_s")})
        metrics["cpp_build_seconds"] = round(cmp["cpp_build_seconds"], 2)
    metrics["stage_seconds"] = round(time.perf_counter() - t0, 2)
    write_json(metrics_path, metrics)
    return metrics
