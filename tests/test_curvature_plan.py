"""The curated curvature datasets' plan (benchmarks/bench_curvature.py): what issue 22 asks of it, and stable keys."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_curvature", ROOT / "benchmarks" / "bench_curvature.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_curvature"] = mod
    spec.loader.exec_module(mod)
    return mod


B = _bench()


def test_long_dipoles_cover_every_character_and_the_condition_ranges_12_nm_first():
    plan = B.long_dipole_plan()
    lengths = [p.cfg.md.box.line_nm for p in plan]
    assert lengths == sorted(lengths, reverse=True) and set(lengths) == {12.0, 6.0}
    twelve = [p.spec for p in plan if p.cfg.md.box.line_nm == 12.0]
    six = [p.spec for p in plan if p.cfg.md.box.line_nm == 6.0]
    assert [(s.temperature_k, s.stress_gpa, s.angle_deg) for s in twelve] == \
           [(s.temperature_k, s.stress_gpa, s.angle_deg) for s in six]  # paired conditions: the trend with length
    assert {s.angle_deg for s in twelve} == set(B.CHARACTERS_DEG)
    assert all(100 <= s.temperature_k <= 1000 and 0.1 <= s.stress_gpa <= 1.0 for s in twelve)
    temps = [s.temperature_k for s in twelve]
    assert min(temps) < 200 and max(temps) > 900  # spread over the range, not clustered
    assert all(p.cfg.md.duration_ps >= 3.0 for p in plan)
    assert len({p.key for p in plan}) == len(plan)


def test_large_loops_span_radii_loads_and_both_temperatures_in_25_nm_cells():
    plan = B.loop_plan()
    assert {p.cfg.md.loop.radius_nm for p in plan} >= {3.0, 4.0, 6.0}
    assert {p.spec.temperature_k for p in plan} == {300.0, 500.0}
    stresses = {p.spec.stress_gpa for p in plan}
    assert min(stresses) <= 1.3 < max(stresses)  # around and above the measured critical stress
    assert all(p.cfg.md.loop.glide_nm >= 25.0 and p.cfg.md.duration_ps >= 5.0 for p in plan)
    assert all(p.spec.geometry == "loop" for p in plan)


def test_plan_keys_are_the_run_cache_and_do_not_drift():
    """The run cache is keyed by content: the same plan twice gives the same keys (a resumed sitting finds its runs)."""
    assert [p.key for p in B.long_dipole_plan()] == [p.key for p in B.long_dipole_plan()]
    assert [p.key for p in B.loop_plan()] == [p.key for p in B.loop_plan()]
