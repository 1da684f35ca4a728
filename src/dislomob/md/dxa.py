"""On-the-fly dislocation extraction with OVITO's DXA on in-memory frames (no dump files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dislomob.md.trajectory import Line


def make_dxa_pipeline():
    """An OVITO pipeline with a BCC DislocationAnalysisModifier fed by a replaceable static source."""
    from ovito.data import DataCollection
    from ovito.modifiers import DislocationAnalysisModifier
    from ovito.pipeline import Pipeline, StaticSource

    pipe = Pipeline(source=StaticSource(data=DataCollection()))
    pipe.modifiers.append(DislocationAnalysisModifier(input_crystal_structure=DislocationAnalysisModifier.Lattice.BCC))
    return pipe


def extract_lines(pipe, positions: np.ndarray, cell: np.ndarray, origin: np.ndarray, ca_path: Path | None = None) -> list[Line]:
    """Run DXA on positions (n,3) Angstrom in a periodic cell (rows a,b,c; origin) and return its lines."""
    from ovito.data import DataCollection

    dc = DataCollection()
    dc.create_cell(np.column_stack([cell[0], cell[1], cell[2], origin]), pbc=(True, True, True))
    particles = dc.create_particles(count=len(positions))
    particles.create_property("Position", data=positions)
    pipe.source.data = dc
    data = pipe.compute()
    if ca_path is not None:
        from ovito.io import export_file

        export_file(data, str(ca_path), "ca")
    lines = []
    for seg in data.dislocations.lines:
        lines.append(
            Line(
                points=np.array(seg.points, dtype=np.float64),
                true_burgers=np.array(seg.true_burgers_vector, dtype=np.float64),
                spatial_burgers=np.array(seg.spatial_burgers_vector, dtype=np.float64),
                is_loop=bool(seg.is_loop),
                is_infinite=bool(seg.is_infinite_line),
            )
        )
    return lines
