"""Candidate stream and fixed test set (issue 11) and the active config section."""

from __future__ import annotations

import pytest

from dislomob.active import candidates as stream  # its test_set() is no pytest test: not imported by name
from dislomob.active.candidates import candidate, candidates
from dislomob.config import ActiveConfig, ConfigError, Config, load_config, parse_config
from dislomob.md.crystal import available_orientations

CFG = ActiveConfig()
ANGLES = {o.angle_deg for o in available_orientations()}


def test_kth_candidate_does_not_depend_on_how_many_are_drawn():
    many = candidates(0, 12, seed=5, cfg=CFG)
    assert candidates(7, 3, seed=5, cfg=CFG) == many[7:10]
    assert [candidate(k, 5, CFG) for k in (11, 3, 0)] == [many[11], many[3], many[0]]
    assert candidates(0, 12, seed=6, cfg=CFG) != many


def test_candidates_follow_the_configured_distribution_and_snap_angles():
    cfg = ActiveConfig(temperature_range_k=(200.0, 300.0), stress_range_gpa=(0.4, 0.6))
    runs = candidates(0, 300, seed=1, cfg=cfg)
    temps = [r.temperature_k for r in runs]
    stresses = [r.stress_gpa for r in runs]
    assert 200.0 <= min(temps) < 210.0 and 290.0 < max(temps) <= 300.0
    assert 0.4 <= min(stresses) < 0.42 and 0.58 < max(stresses) <= 0.6
    assert {r.angle_deg for r in runs} <= ANGLES and len({r.angle_deg for r in runs}) >= 10
    assert len({r.seed for r in runs}) == 300 and all(1 <= r.seed < 2**30 for r in runs)


def test_test_set_is_fixed_and_never_the_candidate_stream():
    tests = stream.test_set(4, seed=9, cfg=CFG)
    assert tests == stream.test_set(4, seed=9, cfg=CFG) and stream.test_set(6, seed=9, cfg=CFG)[:4] == tests
    assert not set(tests) & set(candidates(0, 50, seed=9, cfg=CFG))  # same seed, own stream
    assert stream.test_set(4, seed=10, cfg=CFG) != tests


def test_negative_index_is_refused():
    with pytest.raises(ValueError, match="k=-1"):
        candidate(-1, 0, CFG)


def test_active_defaults_are_the_demo_and_paper_has_its_own():
    assert Config().active == load_config("params.yaml").active
    paper = load_config("pipelines/paper/params.yaml").active
    assert (paper.pool_size, paper.select, paper.threshold, paper.test_trajectories, paper.max_iterations) == (
        8, 4, 0.25, 8, 15)
    assert Config().active.strategies == ["active", "passive"] and Config().active.experiment == "dislomob-al"


@pytest.mark.parametrize("active, words", [
    ({"pool_size": 3, "select": 4}, ["active.select=4", "pool_size=3", "select <= pool_size"]),
    ({"temperature_range_k": [1000, 100]}, ["active.temperature_range_k", "min <= max"]),
    ({"temperature_range_k": [0, 100]}, ["0 < min"]),
    ({"stress_range_gpa": [0.1, 9.0]}, ["active.stress_range_gpa", "5.0 GPa"]),
    ({"threshold": float("nan")}, ["active.threshold"]),
    ({"noise_floor_angstrom": 0.0}, ["active.noise_floor_angstrom"]),
    ({"strategies": ["active", "active"]}, ["distinct"]),
    ({"strategies": ["greedy"]}, ["active.strategies"]),
])
def test_bad_active_values_name_key_and_allowed(active, words):
    with pytest.raises(ConfigError) as err:
        parse_config({"active": active})
    for w in words:
        assert w in str(err.value)


def test_calibration_set_is_its_own_stream_of_the_candidate_distribution():
    cfg = ActiveConfig()
    cal = stream.calibration_set(4, cfg.test_seed, cfg)
    test = stream.test_set(4, cfg.test_seed, cfg)
    cands = candidates(0, 4, cfg.test_seed, cfg)
    assert not {(s.temperature_k, s.stress_gpa) for s in cal} & {(s.temperature_k, s.stress_gpa) for s in test + cands}
    assert stream.calibration_set(2, cfg.test_seed, cfg) == cal[:2]
    lo_t, hi_t = cfg.temperature_range_k
    assert all(lo_t <= s.temperature_k <= hi_t and 0.1 <= s.stress_gpa <= 1.0 for s in cal)
