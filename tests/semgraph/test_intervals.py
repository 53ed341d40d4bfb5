"""Bootstrap intervals and paired comparisons of evaluation figures (semgraph.evaluation.intervals)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semgraph.errors import InvalidInput
from semgraph.evaluation.intervals import bootstrap_mean, compare_paired


def test_a_constant_has_no_spread():
    e = bootstrap_mean([0.25, 0.25, 0.25])
    assert (e.mean, e.low, e.high, e.n) == (0.25, 0.25, 0.25, 3)


def test_nan_runs_are_left_out():
    e = bootstrap_mean([1.0, np.nan, 0.0])
    assert e.n == 2 and e.mean == 0.5 and 0.0 <= e.low < 0.5 < e.high <= 1.0


def test_paired_shares_by_hand():
    # differences 1, 0, 0.25, -0.5: better 2 of 4, worse 1 of 4, tied 1 of 4, mean 0.75 / 4 = 0.1875
    c = compare_paired([1.0, 0.3, 0.75, 0.0], [0.0, 0.3, 0.5, 0.5])
    assert (c.better, c.worse, c.ties) == (0.5, 0.25, 0.25)
    assert c.difference.mean == pytest.approx(0.1875)


def test_bad_input_is_refused():
    with pytest.raises(InvalidInput, match="same runs"):
        compare_paired([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInput, match="no defined value"):
        bootstrap_mean([np.nan])
    with pytest.raises(InvalidInput, match="level"):
        bootstrap_mean([1.0], level=1.5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_the_interval_holds_the_mean_and_stays_in_the_range(values):
    e = bootstrap_mean(values, resamples=300)
    assert min(values) - 1e-12 <= e.low <= e.mean + 1e-12 and e.mean - 1e-12 <= e.high <= max(values) + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=30))
def test_swapping_the_pair_mirrors_the_comparison(pairs):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    ab, ba = compare_paired(a, b, resamples=200), compare_paired(b, a, resamples=200)
    assert ab.better == ba.worse and ab.worse == ba.better and ab.ties == ba.ties
    assert ab.difference.mean == pytest.approx(-ba.difference.mean)
    assert ab.better + ab.worse + ab.ties == pytest.approx(1.0)
