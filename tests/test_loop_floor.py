"""The loop floor (dislomob.evaluate.loop_floor): a law that knows each loop's mean motion per character."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import loop_graph, trajectory_graphs

from dislomob.evaluate.loop_floor import floor_errors, is_loop_graph, loop_mean_law_errors
from dislomob.model.floors import mean_law_errors


def _expanding(traj_id: str, n: int = 24) -> list:
    """A loop expanding under the test law (character-dependent speed), three frames of growing radius."""
    return [loop_graph(30.0 + 3.0 * k, 1.5, 300.0, n=n, dt_ps=0.5, traj_id=traj_id) for k in range(3)]


def test_a_loop_that_expands_the_same_way_every_frame_has_a_floor_near_zero_where_a_rigid_translation_has_none():
    graphs = _expanding("a")
    assert all(is_loop_graph(g) for g in graphs)
    floor = loop_mean_law_errors(graphs)
    rigid = mean_law_errors(graphs)
    print(f"loop floor {floor}, rigid {rigid}")
    assert np.all(floor < 0.05)
    assert np.all(rigid > 0.9)


def test_a_loop_whose_expansion_doubles_is_scored_against_its_mean():
    """Frame steps s and 2s: the mean 1.5 s misses each by 0.5 s, i.e. 1/2 and 1/4 of the step (nodally; the
    project's symmetric line distance between non-concentric curves gives a little less for the first)."""
    graphs = [loop_graph(30.0, 1.5, 300.0, n=24, dt_ps=0.5, traj_id="b"),
              loop_graph(33.0, 1.5, 300.0, n=24, dt_ps=1.0, traj_id="b")]
    floor = loop_mean_law_errors(graphs)
    assert floor[0] == pytest.approx(0.5, abs=0.1) and floor[1] == pytest.approx(0.25, abs=0.05)


def test_straight_lines_are_not_loops_and_keep_the_mean_law_floor():
    dipole = trajectory_graphs("d", 90.0, 0.5, 300.0)
    assert not any(is_loop_graph(g) for g in dipole)
    mixed = dipole + _expanding("c")
    got = floor_errors(mixed)
    np.testing.assert_allclose(got[:len(dipole)], mean_law_errors(dipole), rtol=1e-12)
    np.testing.assert_allclose(got[len(dipole):], loop_mean_law_errors(mixed[len(dipole):]), rtol=1e-12)
