"""The crystal's position inferred after the fact for dipole trajectories whose MD did not record it.

Assumption (stated in every corrected file's events): the two lines of a dipole are lattice-inversion
partners under the same load, so relative to the crystal they move by equal and opposite amounts, and
the crystal moves like a homogeneously sheared body whose tilt is the box's: u(s) = drift * s + c e_x,
with s the fractional height and drift the change of the cell's third row (box flips removed). The
translation c along the glide direction x is the one that makes the two lines' lattice displacements
opposite: c = mean over lines of (x_i - x_i(0) - drift_x * s_i). Lengths in Angstrom.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from dislomob.md.analysis import glide_positions, track_lines
from dislomob.md.crystal_frame import cell_drift, fractional_height, n_bins_for
from dislomob.md.trajectory import Event, Trajectory, read_trajectory, write_trajectory

ASSUMPTION = ("crystal position inferred after the fact: the box tilt carries the lattice at height s by s x the "
              "tilt change, and the dipole's inversion symmetry (equal and opposite line speeds relative to the "
              "crystal) fixes the crystal's translation along the glide direction")


def inferred_inversion_profiles(traj: Trajectory) -> np.ndarray:
    """Profiles (n_frames, n_bins, 3) Angstrom of a dipole trajectory from its lines and cells (module docstring)."""
    frames = traj.frames
    tracks = track_lines(frames)
    if traj.meta.geometry != "dipole" or len(tracks) != 2 or any(len(t) != len(frames) for t in tracks):
        raise ValueError(f"{traj.meta.key}: the inversion-symmetry correction needs a dipole with both lines in every "
                         f"frame (geometry {traj.meta.geometry}, {len(tracks)} line(s))")
    glide_x = np.array([glide_positions(t, frames) for t in tracks])
    drift = cell_drift([f.cell for f in frames])
    heights = np.array([[fractional_height(ln.points, f.cell, f.origin).mean() for ln, f in zip(t, frames)]
                        for t in tracks])
    c = ((glide_x - glide_x[:, :1]) - drift[None, :, 0] * heights).mean(axis=0)
    n_bins = n_bins_for(frames[0].cell[2, 2])
    centres = (np.arange(n_bins) + 0.5) / n_bins
    out = drift[:, None, :] * centres[None, :, None]
    out[:, :, 0] += c[:, None]
    return out


def correct_file(path: str | Path) -> bool:
    """Give a dipole trajectory file without a recorded crystal position the inferred one (atomic rewrite).

    Returns False (nothing written) for a file that already has one or a failed run.
    """
    traj = read_trajectory(path)
    if traj.meta.lattice_reference is not None or traj.meta.status == "failed":
        return False
    if len(traj.frames) < 2:  # the crystal's displacement since the first frame is zero there by definition
        profiles = np.zeros((len(traj.frames), n_bins_for(traj.frames[0].cell[2, 2]) if traj.frames else 8, 3))
    else:
        profiles = inferred_inversion_profiles(traj)
    frames = [replace(f, lattice_u=u) for f, u in zip(traj.frames, profiles)]
    meta = traj.meta.model_copy(update={"lattice_reference": "inferred_inversion",
                                        "events": [*traj.meta.events, Event(kind="note", detail=ASSUMPTION)]})
    write_trajectory(path, Trajectory(meta, frames))
    return True
