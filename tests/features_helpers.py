"""Analytic dislocation configurations for featurization tests: wavy periodic edge dipoles."""

from __future__ import annotations

import numpy as np

from dislomob.md.trajectory import Frame, Line, Trajectory, TrajectoryMeta

A0 = 2.8553
B_LEN = A0 * np.sqrt(3) / 2
ROTATION = np.array([np.array(v) / np.linalg.norm(v) for v in ([1, 1, -1], [-1, 2, 1], [1, 0, 1])])
CELL = np.array([[30.0, 0.0, 0.0], [0.4, 21.0, 0.0], [1.0, 0.2, 60.0]])


def wavy_line(x0: float, z0: float, sign: float, cell: np.ndarray = CELL, amp: float = 1.0, phase: float = 0.0,
              n: int = 8, infinite: bool = True) -> Line:
    """A periodic edge line along cell row 1 through (x0, z0), waving in x; b = sign * |b| x_hat."""
    s = np.linspace(0.0, 1.0, n + 1)
    pts = np.array([x0, 0.0, z0]) + s[:, None] * cell[1] + np.outer(amp * np.sin(2 * np.pi * s + phase), [1, 0, 0])
    b = np.array([sign * B_LEN, 0.0, 0.0])
    return Line(pts, sign * np.array([0.5, 0.5, -0.5]), b, True, infinite)


def dipole_frame(time_ps: float, shift: float, cell: np.ndarray = CELL, **kw) -> Frame:
    """Two opposite edge lines half a cell apart in x and z, glided apart by +-shift Angstrom."""
    lines = [wavy_line(8.0 + shift, 15.0, 1.0, cell, **kw), wavy_line(23.0 - shift, 45.0, -1.0, cell, phase=1.0, **kw)]
    return Frame(time_ps, cell, np.zeros(3), lines)


def meta(**kw) -> TrajectoryMeta:
    data = dict(key="synthetic", temperature_k=300.0, stress_gpa=0.5,
                stress_tensor_gpa=[[0, 0, 0.5], [0, 0, 0], [0.5, 0, 0]], angle_deg=90.0, requested_angle_deg=90.0,
                line_direction=[-1, 2, 1], glide_direction=[1, 1, -1], plane_normal=[1, 0, 1],
                burgers=[0.5, 0.5, -0.5], rotation=ROTATION.tolist(), sample_every_ps=0.5)
    data.update(kw)
    return TrajectoryMeta(**data)


def dipole_trajectory(n_frames: int = 5, dt_ps: float = 0.5, speed: float = 2.0) -> Trajectory:
    """Frames every dt_ps with the lines gliding apart at ``speed`` Angstrom/ps."""
    return Trajectory(meta(), [dipole_frame(k * dt_ps, speed * k * dt_ps) for k in range(n_frames)])
