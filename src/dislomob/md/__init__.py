"""Molecular dynamics of BCC dislocations: crystallography, builders, LAMMPS runs, on-the-fly DXA."""
