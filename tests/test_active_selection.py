"""Selection of candidates: highest uncertainty and seeded random, with the bookkeeping in one place."""

from __future__ import annotations

import pytest

from dislomob.active.selection import random_selection, select, top_uncertainty


def test_top_uncertainty_takes_the_highest_scores_highest_first():
    assert top_uncertainty([0.1, 0.9, 0.3, 0.5], 2) == [1, 3]
    assert top_uncertainty([0.1, 0.9, 0.3, 0.5], 4) == [1, 3, 2, 0]
    assert top_uncertainty([0.1, 0.9], 0) == []


def test_ties_go_to_the_lower_index_whatever_the_order_of_the_pool():
    assert top_uncertainty([0.5, 0.7, 0.5, 0.7, 0.5], 3) == [1, 3, 0]
    assert top_uncertainty([0.2, 0.2, 0.2], 2) == [0, 1]


def test_excluded_indices_are_never_selected_again():
    first = top_uncertainty([0.1, 0.9, 0.3, 0.5], 2)
    second = top_uncertainty([0.1, 0.9, 0.3, 0.5], 2, exclude=first)
    assert second == [2, 0] and not set(first) & set(second)
    with pytest.raises(ValueError, match="select=3 not allowed .* 2 already taken: allowed 0 <= select <= 2"):
        top_uncertainty([0.1, 0.9, 0.3, 0.5], 3, exclude=first)
    with pytest.raises(ValueError, match=r"exclude \[4\] outside the pool of 4"):
        top_uncertainty([0.1, 0.9, 0.3, 0.5], 1, exclude=[4])


def test_nan_score_is_refused_naming_the_candidate():
    with pytest.raises(ValueError, match=r"candidate 2 \(run-c\) = nan"):
        top_uncertainty([0.1, 0.2, float("nan")], 1, names=["run-a", "run-b", "run-c"])
    with pytest.raises(ValueError, match="candidate 0 = inf"):
        select([float("inf"), 0.2], 1)


def test_select_larger_than_the_pool_is_refused():
    with pytest.raises(ValueError, match="select=5 not allowed for a pool of 4 candidates"):
        top_uncertainty([0.1, 0.2, 0.3, 0.4], 5)
    with pytest.raises(ValueError, match="select=-1"):
        top_uncertainty([0.1], -1)
    with pytest.raises(ValueError, match="select=3 not allowed for a pool of 2"):
        random_selection(2, 3, seed=0)


def test_random_selection_is_seeded_distinct_and_covers_the_pool():
    a = random_selection(8, 4, seed=[7, 0])
    assert a == random_selection(8, 4, seed=[7, 0]) and len(set(a)) == 4 and all(0 <= i < 8 for i in a)
    picks = {tuple(random_selection(8, 4, seed=[7, it])) for it in range(20)}
    assert len(picks) > 10  # different iterations draw differently
    assert sorted(random_selection(8, 8, seed=3)) == list(range(8))
    rest = random_selection(8, 4, seed=[7, 0], exclude=a)
    assert sorted(a + rest) == list(range(8))
