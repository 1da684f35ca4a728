"""Per-line observables of a trajectory: crystal-frame Burgers vector, character angle, glide velocity.

Velocities in m/s (1 Angstrom/ps = 100 m/s), relative to the crystal (``dislomob.md.crystal_frame``);
angles in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dislomob.md.crystal_frame import CrystalMotion, in_crystal_frame_of
from dislomob.md.trajectory import Frame, Line, Trajectory

ANGSTROM_PER_PS_TO_M_S = 100.0


@dataclass(frozen=True)
class LineSummary:
    """A tracked line: Burgers vector (crystal, line sense along +y), character (deg), velocity (m/s)."""

    burgers: list[float]
    character_deg: float
    velocity_m_s: float
    glide_plane_z_angstrom: float
    is_loop: bool


def line_sense(line: Line) -> np.ndarray:
    """Unit mean line direction (first to last point); for loops the plane normal by the right-hand rule."""
    p = line.points
    if line.closed_loop:
        c = p - p.mean(0)
        n = np.cross(c[:-1], c[1:]).sum(0)
        return n / np.linalg.norm(n)
    d = p[-1] - p[0]
    return d / np.linalg.norm(d)


def oriented(line: Line, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(line sense, spatial Burgers) with the sense flipped, together with b, to point along ``axis``."""
    xi, b = line_sense(line), np.asarray(line.spatial_burgers, dtype=float)
    if xi @ axis < 0:
        return -xi, -b
    return xi, b


def crystal_burgers(b_box: np.ndarray, rotation: np.ndarray, a: float) -> np.ndarray:
    """A box-frame Burgers vector (Angstrom) in crystal coordinates, units of the lattice constant."""
    return np.asarray(rotation).T @ b_box / a


def character_deg(line: Line) -> float:
    """Angle (deg) between the line's Burgers vector and its sense, for a straight (non-loop) line."""
    xi, b = line_sense(line), np.asarray(line.spatial_burgers, dtype=float)
    c = float(xi @ b) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _loop_radius(line: Line) -> float:
    p = line.points[:, :2]
    x, y = p[:, 0], p[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return float(np.sqrt(area / np.pi))


def track_lines(frames: list[Frame]) -> list[list[Line]]:
    """Follow each line of the first frame through later frames by its glide plane (z, minimum image)."""
    if not frames:
        return []
    tracks = [[ln] for ln in frames[0].lines]
    for f in frames[1:]:
        lz = f.cell[2, 2]
        used: set[int] = set()
        for tr in tracks:
            z0 = tr[-1].points[:, 2].mean()
            dz = [abs(((ln.points[:, 2].mean() - z0) + lz / 2) % lz - lz / 2) for ln in f.lines]
            order = [j for j in np.argsort(dz) if j not in used]
            if order:
                used.add(order[0])
                tr.append(f.lines[order[0]])
    return tracks


def glide_positions(track: list[Line], frames: list[Frame]) -> np.ndarray:
    """Unwrapped mean x (Angstrom) of a tracked straight line over frames (minimum-image increments)."""
    xs = np.array([ln.points[:, 0].mean() for ln in track])
    lx = np.array([f.cell[0, 0] for f in frames[: len(track)]])
    steps = np.diff(xs)
    steps -= lx[1:] * np.round(steps / lx[1:])
    return np.concatenate([[xs[0]], xs[0] + np.cumsum(steps)])


def crystal_frames(frames: list[Frame], ref: int = 0) -> list[Frame]:
    """A whole trajectory's frames with every line in the crystal frame of frame ``ref`` (unchanged where no
    profile was recorded). Pass every frame: the profiles count from the first one."""
    motion = CrystalMotion.of(frames)
    return [in_crystal_frame_of(frames, motion, k, ref) for k in range(len(frames))]


def summarize(traj: Trajectory, skip_ps: float = 0.0) -> list[LineSummary]:
    """Per tracked line: crystal Burgers, character angle, and velocity relative to the crystal fitted after
    ``skip_ps`` picoseconds."""
    frames = crystal_frames(traj.frames)
    if not frames:
        return []
    rot = np.array(traj.meta.rotation)
    a = float(np.linalg.norm(frames[0].lines[0].spatial_burgers) * 2 / np.sqrt(3)) if frames[0].lines else 1.0
    times = np.array([f.time_ps for f in frames])
    out = []
    for track in track_lines(frames):
        t = times[: len(track)]
        first = track[0]
        if first.closed_loop:
            y = np.array([_loop_radius(ln) for ln in track])
        else:
            y = glide_positions(track, frames)
        sel = t >= skip_ps
        v = float(np.polyfit(t[sel], y[sel], 1)[0]) * ANGSTROM_PER_PS_TO_M_S if sel.sum() >= 2 else float("nan")
        if first.closed_loop:
            b_box = np.asarray(first.spatial_burgers, dtype=float)
            char = float("nan")
        else:
            xi, b_box = oriented(first, np.array([0.0, 1.0, 0.0]))
            char = float(np.degrees(np.arccos(np.clip(xi @ b_box / np.linalg.norm(b_box), -1, 1))))
        out.append(
            LineSummary(
                burgers=[round(float(c), 4) for c in crystal_burgers(b_box, rot, a)],
                character_deg=char,
                velocity_m_s=v,
                glide_plane_z_angstrom=float(first.points[:, 2].mean()),
                is_loop=first.closed_loop,
            )
        )
    return out


@dataclass(frozen=True)
class DipoleSymmetry:
    """How well a dipole's two lines move as inversion partners: mean speed and common mode (m/s), asymmetry,
    and the signed excess speed of the upper line (the one at larger z) over the mean speed.

    A frame error such as the box tilt's drift makes one line faster by a sign fixed by the geometry (the
    upper line, in the lab frame), so the mean of ``upper_excess`` over runs measures it; thermal fluctuations
    of the lines give either sign.
    """

    speed_m_s: float
    common_mode_m_s: float
    asymmetry: float
    upper_excess: float

    @property
    def common_mode_fraction(self) -> float:
        """Common mode over the mean speed (0 for equal and opposite speeds)."""
        return self.common_mode_m_s / self.speed_m_s if self.speed_m_s > 0 else float("nan")


def dipole_symmetry(traj: Trajectory, skip_ps: float = 0.0) -> DipoleSymmetry | None:
    """Mean speed (|v1| + |v2|) / 2, common mode |v1 + v2| / 2, asymmetry ||v1| - |v2|| / mean speed and the upper
    line's excess (|v_upper| - |v_lower|) / 2 / mean speed of a dipole's two lines (crystal frame, m/s); None for a
    loop, a failed run or lines that cannot both be followed."""
    if traj.meta.geometry != "dipole" or traj.meta.status == "failed" or len(traj.frames) < 2:
        return None
    lines = summarize(traj, skip_ps)
    if len(lines) != 2 or not all(np.isfinite(s.velocity_m_s) for s in lines):
        return None
    upper, lower = sorted(lines, key=lambda s: -s.glide_plane_z_angstrom)
    v1, v2 = upper.velocity_m_s, lower.velocity_m_s
    speed = 0.5 * (abs(v1) + abs(v2))
    if not speed > 0:
        return DipoleSymmetry(0.0, 0.5 * abs(v1 + v2), float("nan"), float("nan"))
    return DipoleSymmetry(speed, 0.5 * abs(v1 + v2), abs(abs(v1) - abs(v2)) / speed, 0.5 * (abs(v1) - abs(v2)) / speed)
