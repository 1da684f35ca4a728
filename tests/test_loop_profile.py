"""The shear-loop dataset's params (dislomob.loop_profile) and the ``--loops`` flag of the command line."""

from __future__ import annotations

import pytest

from dislomob.config import Config, ConfigError, parse_config
from dislomob.loop_profile import loop_config
from dislomob.md.dataset import initial_specs
from dislomob.md.run import run_key


def test_loop_config_applies_the_loops_section_and_keeps_everything_else() -> None:
    cfg = parse_config({"loops": {"temperatures_k": [300], "stresses_gpa": [1.5, 2.0], "dt_ps": 0.4,
                                  "loop": {"radius_nm": 3.0, "glide_nm": 9.0, "line_nm": 8.0, "height_nm": 4.0}}})
    lc = loop_config(cfg)
    assert lc.md.geometry == "loop" and lc.md.loop.radius_nm == 3.0 and lc.md.duration_ps == cfg.loops.duration_ps
    assert lc.dataset.out_dir == "data/loops/md" and lc.features.out_dir == "data/loops/graphs"
    assert lc.features.dt_ps == 0.4 and lc.train.model_dir == "models/loops/train"
    assert lc.train.experiment == "dislomob-train-loops" and lc.train.split == cfg.loops.split
    # only the data differ: material, MD protocol, graph settings and the network are the dipoles'
    assert lc.material == cfg.material and lc.md.timestep_fs == cfg.md.timestep_fs
    assert {k: v for k, v in lc.features.model_dump().items() if k not in ("dt_ps", "out_dir")} == \
        {k: v for k, v in cfg.features.model_dump().items() if k not in ("dt_ps", "out_dir")}
    assert lc.train.width == cfg.train.width and lc.train.tuned_params == cfg.train.tuned_params
    specs = initial_specs(lc)
    assert len(specs) == 2 and {s.geometry for s in specs} == {"loop"} and {s.angle_deg for s in specs} == {90.0}
    assert cfg.md.geometry == "dipole"  # the dipole params untouched


def test_loop_runs_have_their_own_cache_keys_and_dipole_keys_stay() -> None:
    import json
    from dataclasses import replace
    from pathlib import Path

    from dislomob.config import load_config

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "params.yaml")
    dipoles = {run_key(s, cfg.md, cfg.material) for s in initial_specs(cfg)}
    # the committed featurize metrics name the demo's dipole runs by these keys: the loop version left them as they were
    featurized = {t["traj_id"] for t in json.loads((root / "metrics" / "featurize.json").read_text())["trajectories"]}
    assert dipoles == featurized
    loops = {run_key(replace(s, geometry="loop"), cfg.md, cfg.material) for s in initial_specs(cfg)}
    assert not loops & dipoles and len(loops) == len(dipoles)


def test_bad_loop_params_and_flag_misuse_are_named(tmp_path, capsys) -> None:
    from dislomob.cli import main

    with pytest.raises(ConfigError, match="loops.stresses_gpa"):
        parse_config({"loops": {"stresses_gpa": []}})
    with pytest.raises(ConfigError, match="loops.loop"):
        parse_config({"loops": {"loop": {"radius_nm": 6.0}}})  # 2R + 2 nm exceeds the default 10 nm cell
    assert main(["--loops", "evaluate"]) == 2
    assert "--loops with evaluate: allowed with simulate, featurize, train" in capsys.readouterr().err
