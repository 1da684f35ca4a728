"""``export_law``: an ensemble file -> ``torch.export`` program -> AOTInductor ``.pt2`` package.

The package runs :class:`dislomob.export.module.ExportLaw` (float64, CPU) on the contract of
:mod:`dislomob.export.contract` with dynamic node and quadrature-point counts; C++ loads it with
``torch::inductor::AOTIModelPackageLoader`` (examples/cpp), Python with ``torch._inductor.aoti_load_package``.
Its metadata (``get_metadata()`` in C++) names the contract version, the input and output order and units.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from dislomob.config import Config
from dislomob.errors import InputFileError
from dislomob.export.contract import INPUT_NAMES, OUTPUT_NAMES, ExportInputs
from dislomob.export.module import ExportLaw
from dislomob.model.ensemble import load_ensemble
from dislomob.model.laws import law_name

CONTRACT_VERSION = 1
MIN_NODES = 2
MIN_QUADRATURE = 2


def export_module(ensemble_path: str | Path, cfg: Config) -> ExportLaw:
    """The float64 :class:`ExportLaw` of an ensemble file (its active members; ``cfg.features.n_gauss``)."""
    model, _ = load_ensemble(ensemble_path)
    if law_name(model) != "pignn":
        raise ValueError(f"{ensemble_path}: export packages the pignn law (ExportLaw); this file holds a "
                         f"{law_name(model)!r} law")
    return ExportLaw.from_ensemble(model, cfg.features.n_gauss, torch.float64)


def export_program(law: ExportLaw, example: ExportInputs) -> torch.export.ExportedProgram:
    """``torch.export`` of ``law`` with dynamic node count (>= 2) and quadrature-point count (>= 2)."""
    n = torch.export.Dim("n_nodes", min=MIN_NODES)
    q = torch.export.Dim("n_quad", min=MIN_QUADRATURE)
    per_node, per_quad = {0: n}, {0: q}
    shapes = (per_node, per_node, per_node, per_node, None, per_quad, per_quad, per_quad, None, per_node)
    with torch.no_grad():
        return torch.export.export(law, example.tensors(), dynamic_shapes=shapes, strict=False)


def package_metadata(cfg: Config) -> dict[str, str]:
    """String metadata stored in the package (contract version, tensor order, units, Gauss points)."""
    return {"dislomob_contract_version": str(CONTRACT_VERSION), "inputs": ",".join(INPUT_NAMES),
            "outputs": ",".join(OUTPUT_NAMES), "units": "in: Angstrom, GPa, K; out: m/s",
            "n_gauss": str(cfg.features.n_gauss), "dtype": "float64"}


def export_law(ensemble_path: str | Path, cfg: Config, out_path: str | Path, example: ExportInputs) -> dict[str, Any]:
    """Export the ensemble file's law to the ``.pt2`` package ``out_path`` (written atomically), traced on the
    contract inputs ``example``; returns timings (s) and the package's metadata."""
    out = Path(out_path)
    if out.suffix != ".pt2":
        raise InputFileError(f"export output {out}: the package name must end in .pt2")
    law = export_module(ensemble_path, cfg)
    t0 = time.perf_counter()
    program = export_program(law, example)
    t1 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        built = torch._inductor.aoti_compile_and_package(
            program, package_path=str(tmp / out.name),
            inductor_configs={"aot_inductor.metadata": package_metadata(cfg)})
        os.replace(built, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t2 = time.perf_counter()
    return {"package": str(out), "export_seconds": t1 - t0, "compile_seconds": t2 - t1,
            "active_members": int(law.active_index.numel()), "members": law.ensemble_members,
            "metadata": package_metadata(cfg)}


def load_package(path: str | Path):
    """The compiled law of a ``.pt2`` package as a Python callable (inputs in contract order -> (velocity, sigma))."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"exported law {p} not found")
    return torch._inductor.aoti_load_package(str(p))
