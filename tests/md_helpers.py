"""Helpers for tests that run LAMMPS and OVITO for real on small systems."""

from __future__ import annotations

import numpy as np

from dislomob.md import lmp as L
from dislomob.md.build import Configuration
from dislomob.md.dxa import run_dxa
from dislomob.md.potential import resolve_potential
from dislomob.md.trajectory import Line


def minimize_and_extract(conf: Configuration, steps: int = 300, threads: int = 2) -> tuple[list[Line], np.ndarray]:
    """Minimize ``conf`` with LAMMPS (EAM Fe) and return DXA's lines and the cell rows."""
    lmp = L.open_lammps(threads)
    try:
        L.setup_system(lmp, conf.positions, conf.cell, resolve_potential("Fe_mm.eam.fs"), "Fe", 55.845)
        L.minimize(lmp, steps)
        cell, origin = L.cell_of(lmp)
        return run_dxa(L.positions_of(lmp), cell, origin), cell
    finally:
        lmp.close()
