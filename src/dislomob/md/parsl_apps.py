"""Parsl apps for MD runs; defined in the installed package so workers import them by module."""

from __future__ import annotations

from parsl import python_app


@python_app
def simulate_app(spec: dict, md_json: str, material_json: str, out_dir: str) -> str:
    """Run one trajectory on a Parsl worker; returns the trajectory path."""
    from dislomob.config import MaterialConfig, MDConfig
    from dislomob.md.run import RunSpec, simulate

    md = MDConfig.model_validate_json(md_json)
    material = MaterialConfig.model_validate_json(material_json)
    return str(simulate(RunSpec(**spec), md, material, out_dir))
