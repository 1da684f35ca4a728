"""Parsl apps for MD runs; defined in the installed package so workers import them by module."""

from __future__ import annotations

from parsl import python_app


@python_app
def simulate_app(spec: dict, md: dict, material: dict, out_dir: str, force: bool = False) -> str:
    """Run one trajectory on a Parsl worker; returns the trajectory path.

    Settings travel as plain dicts (pickled): a JSON round trip would turn ``inf`` into ``null``.
    """
    from dislomob.config import MaterialConfig, MDConfig
    from dislomob.md.run import RunSpec, simulate

    return str(simulate(RunSpec(**spec), MDConfig.model_validate(md), MaterialConfig.model_validate(material), out_dir,
                        force=force))
