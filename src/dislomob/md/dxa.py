"""On-the-fly dislocation extraction with OVITO's DXA on in-memory frames (no dump files).

OVITO objects belong to the thread that made them, so every DXA call in a process runs on one
long-lived worker thread that owns the pipeline. MD can advance while that thread works on the
previous frame (``submit_dxa``); ``run_dxa`` waits for the result.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dislomob.md.trajectory import Line

_LOCK = threading.Lock()
_EXECUTOR: ThreadPoolExecutor | None = None
_LOCAL = threading.local()


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    with _LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dxa")
        return _EXECUTOR


def submit_dxa(positions: np.ndarray, cell: np.ndarray, origin: np.ndarray, ca_path: Path | None = None) -> "Future[list[Line]]":
    """Start DXA on positions (n,3) Angstrom in a periodic cell (rows a, b, c; origin) on the DXA thread."""
    return _executor().submit(_extract, np.array(positions, copy=True), np.asarray(cell), np.asarray(origin), ca_path)


def run_dxa(positions: np.ndarray, cell: np.ndarray, origin: np.ndarray, ca_path: Path | None = None) -> list[Line]:
    """DXA lines of one frame (blocking)."""
    return submit_dxa(positions, cell, origin, ca_path).result()


def _pipeline():
    if not hasattr(_LOCAL, "pipe"):
        from ovito.data import DataCollection
        from ovito.modifiers import DislocationAnalysisModifier
        from ovito.pipeline import Pipeline, StaticSource

        pipe = Pipeline(source=StaticSource(data=DataCollection()))
        pipe.modifiers.append(DislocationAnalysisModifier(input_crystal_structure=DislocationAnalysisModifier.Lattice.BCC))
        _LOCAL.pipe = pipe
    return _LOCAL.pipe


def _extract(positions: np.ndarray, cell: np.ndarray, origin: np.ndarray, ca_path: Path | None) -> list[Line]:
    from ovito.data import DataCollection

    pipe = _pipeline()
    dc = DataCollection()
    dc.create_cell(np.column_stack([cell[0], cell[1], cell[2], origin]), pbc=(True, True, True))
    particles = dc.create_particles(count=len(positions))
    particles.create_property("Position", data=positions)
    pipe.source.data = dc
    data = pipe.compute()
    if ca_path is not None:
        from ovito.io import export_file

        export_file(data, str(ca_path), "ca")
    return [
        Line(
            points=np.array(seg.points, dtype=np.float64),
            true_burgers=np.array(seg.true_burgers_vector, dtype=np.float64),
            spatial_burgers=np.array(seg.spatial_burgers_vector, dtype=np.float64),
            is_loop=bool(seg.is_loop),
            is_infinite=bool(seg.is_infinite_line),
        )
        for seg in data.dislocations.lines
    ]
