"""Coarse-grained dislocation trajectories: typed objects and their HDF5 file format.

A trajectory holds, per DXA frame, the time (ps), the periodic cell (rows, Angstrom), and every
dislocation line's points (Angstrom, unwrapped along the line), true Burgers vector (crystal
frame, units of the lattice constant), spatial Burgers vector (Cartesian, Angstrom) and loop flag.
Each frame may also hold the crystal's displacement profile (``lattice_u``, see
``dislomob.md.crystal_frame``); ``meta.lattice_reference`` says whether it was measured by the MD or
inferred afterwards. Metadata records the physical parameters, MD settings, status and events of the run; a failed
run also records its failure class (``physics``: rerun only on request; ``transient``: rerun on
the next request; see ``dislomob.md.dataset``) and how many attempts it took. Non-finite numbers
(an ``inf`` duration, a ``nan`` stress) round-trip as JSON ``Infinity`` / ``NaN``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
from pydantic import BaseModel, ConfigDict

from dislomob.atomic import atomic_path

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Line:
    """One DXA dislocation line: points (n,3) Angstrom; Burgers vectors; loop / infinite flags."""

    points: np.ndarray
    true_burgers: np.ndarray
    spatial_burgers: np.ndarray
    is_loop: bool
    is_infinite: bool = False

    @property
    def closed_loop(self) -> bool:
        """A finite closed loop (DXA also flags lines closed through the periodic cell as loops)."""
        return self.is_loop and not self.is_infinite


@dataclass(frozen=True)
class Frame:
    """One DXA snapshot: time in ps, cell rows and origin in Angstrom, lines, and the crystal's displacement
    profile (n_bins, 3) Angstrom since the first recorded frame (``dislomob.md.crystal_frame``; None: not recorded)."""

    time_ps: float
    cell: np.ndarray
    origin: np.ndarray
    lines: list[Line]
    lattice_u: np.ndarray | None = None


class Event(BaseModel):
    """Something that happened during a run (cut, failure, retry, note) at a time in ps."""

    model_config = ConfigDict(ser_json_inf_nan="constants")
    kind: str
    time_ps: float | None = None
    detail: str = ""


class TrajectoryMeta(BaseModel):
    """Metadata of one MD run; units in names, crystal-frame vectors as Miller indices."""

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")

    key: str
    status: Literal["ok", "cut", "failed"] = "ok"
    failure_reason: str | None = None
    failure_class: Literal["physics", "transient"] | None = None
    attempts: int = 1
    events: list[Event] = []
    geometry: Literal["dipole", "loop"] = "dipole"
    temperature_k: float
    stress_gpa: float
    stress_tensor_gpa: list[list[float]]
    angle_deg: float
    requested_angle_deg: float
    line_direction: list[int]
    glide_direction: list[int]
    plane_normal: list[int]
    burgers: list[float]
    rotation: list[list[float]]
    n_atoms: int = 0
    potential: str = ""
    seed: int = 0
    timestep_fs: float = 1.0
    settle_ps: float = 0.0
    duration_ps: float = 0.0
    sample_every_ps: float = 0.1
    passing_stress_gpa: float | None = None
    measured_stress_gpa: float | None = None
    box_angstrom: list[float] = []
    measured_stress_tensor_gpa: list[list[float]] | None = None
    versions: dict[str, str] = {}
    wall_time_s: float = 0.0
    production_wall_s: float | None = None
    lattice_reference: Literal["measured", "inferred_inversion"] | None = None


@dataclass
class Trajectory:
    """A run's metadata and its frames."""

    meta: TrajectoryMeta
    frames: list[Frame] = field(default_factory=list)


def write_trajectory(path: str | Path, traj: Trajectory) -> None:
    """Write a trajectory to HDF5 atomically (flat arrays; offsets index lines and points)."""
    frames = traj.frames
    n_lines = [len(f.lines) for f in frames]
    lines = [ln for f in frames for ln in f.lines]
    pts = [np.asarray(ln.points, dtype=np.float64).reshape(-1, 3) for ln in lines]
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["format_version"] = FORMAT_VERSION
            h5.attrs["metadata"] = traj.meta.model_dump_json()
            g = h5.create_group("frames")
            g["time_ps"] = np.array([f.time_ps for f in frames], dtype=np.float64)
            g["cell"] = np.array([f.cell for f in frames], dtype=np.float64).reshape(-1, 3, 3)
            g["origin"] = np.array([f.origin for f in frames], dtype=np.float64).reshape(-1, 3)
            g["line_offset"] = np.concatenate([[0], np.cumsum(n_lines)]).astype(np.int64)
            if frames and all(f.lattice_u is not None for f in frames):
                g["lattice_u"] = np.array([f.lattice_u for f in frames], dtype=np.float64)
            lg = h5.create_group("lines")
            lg["point_offset"] = np.concatenate([[0], np.cumsum([len(p) for p in pts])]).astype(np.int64)
            lg["points"] = np.concatenate(pts) if pts else np.zeros((0, 3))
            lg["true_burgers"] = np.array([ln.true_burgers for ln in lines], dtype=np.float64).reshape(-1, 3)
            lg["spatial_burgers"] = np.array([ln.spatial_burgers for ln in lines], dtype=np.float64).reshape(-1, 3)
            lg["is_loop"] = np.array([ln.is_loop for ln in lines], dtype=bool)
            lg["is_infinite"] = np.array([ln.is_infinite for ln in lines], dtype=bool)


def read_meta(path: str | Path) -> TrajectoryMeta:
    """Read only the metadata of a trajectory file."""
    with h5py.File(_existing(path), "r") as h5:
        return TrajectoryMeta.model_validate_json(h5.attrs["metadata"])


def read_trajectory(path: str | Path) -> Trajectory:
    """Read a trajectory file written by write_trajectory into typed objects."""
    with h5py.File(_existing(path), "r") as h5:
        if int(h5.attrs.get("format_version", -1)) != FORMAT_VERSION:
            raise ValueError(f"{path}: trajectory format_version {h5.attrs.get('format_version')} != {FORMAT_VERSION}")
        meta = TrajectoryMeta.model_validate_json(h5.attrs["metadata"])
        g, lg = h5["frames"], h5["lines"]
        times, cells, origins, loff = g["time_ps"][:], g["cell"][:], g["origin"][:], g["line_offset"][:]
        lattice_u = g["lattice_u"][:] if "lattice_u" in g else None
        poff, points = lg["point_offset"][:], lg["points"][:]
        tb, sb = lg["true_burgers"][:], lg["spatial_burgers"][:]
        loop, inf = lg["is_loop"][:], lg["is_infinite"][:]
    frames = []
    for i, t in enumerate(times):
        lines = [
            Line(points[poff[j] : poff[j + 1]], tb[j], sb[j], bool(loop[j]), bool(inf[j]))
            for j in range(loff[i], loff[i + 1])
        ]
        frames.append(Frame(float(t), cells[i], origins[i], lines, None if lattice_u is None else lattice_u[i]))
    return Trajectory(meta, frames)


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"trajectory file {p} not found")
    if not h5py.is_hdf5(p):
        raise ValueError(f"{p} is not a trajectory file (not HDF5; empty or truncated?)")
    return p


def meta_summary(meta: TrajectoryMeta) -> dict[str, Any]:
    """Metadata as a plain JSON-able dict."""
    return json.loads(meta.model_dump_json())
