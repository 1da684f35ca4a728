"""The params of the shear-loop dataset: the project's params with the ``loops`` section applied.

``dislomob --loops simulate|featurize|train`` run the ordinary stages on this config: loop geometry
(``md.geometry: loop``, ``md.loop`` from ``loops.loop``), the loops' settling and recorded MD time, the loop grid
(one box angle), the loops' graph step, split, folders and MLflow experiment. Material, MD protocol, features and
training settings stay the dipoles', so the loop-trained and the dipole-trained ensembles differ only in their data.
"""

from __future__ import annotations

from dislomob.config import Config, parse_config


def loop_config(cfg: Config) -> Config:
    """``cfg`` with the ``loops`` section applied to md, dataset, features and train (validated again)."""
    lp = cfg.loops
    data = cfg.model_dump()
    data["md"].update(geometry="loop", loop=lp.loop.model_dump(), settle_ps=lp.settle_ps, duration_ps=lp.duration_ps)
    data["dataset"].update(temperatures_k=list(lp.temperatures_k), stresses_gpa=list(lp.stresses_gpa),
                           angles_deg=[lp.angle_deg], out_dir=lp.md_dir)
    data["features"].update(dt_ps=lp.dt_ps, out_dir=lp.graphs_dir)
    data["train"].update(split=list(lp.split), model_dir=lp.model_dir, experiment=lp.experiment)
    return parse_config(data)
