"""Write the sample DDD network files ``dipole_fe.json`` and ``loop_fe.json`` next to this script.

Both are BCC Fe (a and the cell sizes from the project's default config), slip system b = 1/2[1 1 -1] a
on (1 0 1), in cubic crystal coordinates (Angstrom), T = 300 K, under a pure resolved shear of 0.5 GPa
on that system: sigma = tau (b_hat n_hat + n_hat b_hat), so b_hat . sigma . n_hat = tau.

- dipole: two straight lines along the line direction [h k -h] of the chosen character (default edge),
  carrying +b and -b, half a cell apart in the glide direction and in the normal (the quadrupolar
  arrangement of the demo MD cells), each meshed into 8 nodes whose last segment closes through the
  periodic cell. The cell is the demo MD box (x = glide, y = line, z = normal, whole lattice periods)
  turned into the crystal frame (rows = box axes times box lengths), except that the line length is
  8 times the featurization's node spacing, so that the nodes are as far apart as in the training graphs.
- loop: a circular shear loop of the demo loop radius on the (1 0 1) plane as 12 nodes, no cell, with its
  line sense chosen so that the Peach-Koehler force (sigma . b) x xi of the applied stress points outwards.

Run: ``.venv/bin/python examples/networks/make_dipole.py [--angle-deg 90]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dislomob.config import Config
from dislomob.ddd.network import DislocationNetwork, write_network
from dislomob.md.crystal import BURGERS, PLANE_NORMAL, nearest_orientation
from dislomob.md.lattice import box_lengths

HERE = Path(__file__).resolve().parent
TEMPERATURE_K = 300.0
RESOLVED_SHEAR_GPA = 0.5
NODES_PER_LINE = 8
LOOP_NODES = 12


def resolved_shear(tau_gpa: float, burgers: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Stress (3,3) GPa of a pure resolved shear tau_gpa on the system (b, n): tau (b_hat n_hat + n_hat b_hat)."""
    b_hat, n_hat = burgers / np.linalg.norm(burgers), normal / np.linalg.norm(normal)
    return tau_gpa * (np.outer(b_hat, n_hat) + np.outer(n_hat, b_hat))


def dipole_network(angle_deg: float, cfg: Config) -> DislocationNetwork:
    """The periodic +b/-b dipole of character ``angle_deg`` in a demo-like MD cell, crystal frame, Angstrom."""
    a = cfg.material.lattice_a_angstrom
    o = nearest_orientation(angle_deg)
    box = cfg.md.box
    line_angstrom = 10.0 * NODES_PER_LINE * cfg.features.node_spacing_nm
    lengths = box_lengths(o, a, (10.0 * box.glide_nm, line_angstrom, 10.0 * box.height_nm))
    cell = lengths[:, None] * o.rotation()
    b = BURGERS * a
    positions, segments, burgers = [], [], []
    for sign, frac in ((1.0, 0.25), (-1.0, 0.75)):
        start = len(positions)
        for k in range(NODES_PER_LINE):
            positions.append(np.array([frac, k / NODES_PER_LINE, frac]) @ cell)
            segments.append((start + k, start + (k + 1) % NODES_PER_LINE))
            burgers.append(sign * b)
    normals = np.tile(PLANE_NORMAL / np.linalg.norm(PLANE_NORMAL), (len(segments), 1))
    return DislocationNetwork(positions_angstrom=np.array(positions), segments=np.array(segments),
                              burgers_angstrom=np.array(burgers), normals=normals, temperature_k=TEMPERATURE_K,
                              applied_stress_gpa=resolved_shear(RESOLVED_SHEAR_GPA, b, PLANE_NORMAL),
                              cell_angstrom=cell)


def loop_network(cfg: Config) -> DislocationNetwork:
    """A 12-node circular shear loop of the demo loop radius on (1 0 1), no cell, Angstrom."""
    a = cfg.material.lattice_a_angstrom
    b = BURGERS * a
    n_hat = PLANE_NORMAL / np.linalg.norm(PLANE_NORMAL)
    e1 = b / np.linalg.norm(b)
    e2 = np.cross(n_hat, e1)
    phi = 2 * np.pi * np.arange(LOOP_NODES) / LOOP_NODES
    radius = 10.0 * cfg.md.loop.radius_nm
    positions = radius * (np.outer(np.cos(phi), e1) - np.outer(np.sin(phi), e2))
    segments = np.column_stack([np.arange(LOOP_NODES), (np.arange(LOOP_NODES) + 1) % LOOP_NODES])
    return DislocationNetwork(positions_angstrom=positions, segments=segments,
                              burgers_angstrom=np.tile(b, (LOOP_NODES, 1)), normals=np.tile(n_hat, (LOOP_NODES, 1)),
                              temperature_k=TEMPERATURE_K,
                              applied_stress_gpa=resolved_shear(RESOLVED_SHEAR_GPA, b, PLANE_NORMAL))


def main() -> None:
    """Write dipole_fe.json and loop_fe.json next to this script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--angle-deg", type=float, default=90.0, help="dipole character angle in degrees (0-180)")
    args = parser.parse_args()
    cfg = Config()
    o = nearest_orientation(args.angle_deg)
    write_network(dipole_network(args.angle_deg, cfg), HERE / "dipole_fe.json",
                  comment=(f"BCC Fe (a = {cfg.material.lattice_a_angstrom} A) periodic dipole, b = +-1/2[1 1 -1] a on "
                           f"(1 0 1), line [{' '.join(map(str, o.line))}] ({o.angle_deg:.1f} deg character), "
                           f"{NODES_PER_LINE} nodes per line, crystal frame; 0.5 GPa resolved shear, 300 K. "
                           f"Made by examples/networks/make_dipole.py"))
    write_network(loop_network(cfg), HERE / "loop_fe.json",
                  comment=(f"BCC Fe circular shear loop, radius {cfg.md.loop.radius_nm} nm, b = 1/2[1 1 -1] a on "
                           f"(1 0 1), {LOOP_NODES} nodes, no cell, crystal frame; 0.5 GPa resolved shear (expands), "
                           f"300 K. Made by examples/networks/make_dipole.py"))


if __name__ == "__main__":
    main()
