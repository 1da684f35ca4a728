"""dislomob: learn BCC dislocation mobility laws from MD with physics-informed GNN ensembles."""

__version__ = "0.1.0"
