"""The pairs a basis circuit joins (umwelt.nn.hessian.pairs) against dense Hessians, and the
samples of them a run follows through training."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from cases import torch_case

from umwelt.errors import ConfigError
from umwelt.nn.hessian import ModelHessian, nonzero_entries
from umwelt.nn.hessian.pairs import circuit_entries, circuit_layout

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dense(name: str):
    c = torch_case(name)
    op = ModelHessian(c.model, c.X, c.y, loss=c.loss, batch_size=c.batch_size)
    return op, op.dense().numpy()


@pytest.mark.parametrize(
    "name, gn",
    [("mlp-4-6-5-1-T0", False), ("vgg11-w128-T0", False), ("mlp-4-5-4-3-1-T0.5", True)],
)
def test_every_nonzero_entry_is_joined_and_the_population_counts_the_joined_pairs(name, gn):
    op, H = _dense(name)  # hinge: the circuit part alone; logistic: with Gauss-Newton's
    layout = circuit_layout(op.param_shapes, gauss_newton=gn)
    assert layout is not None and layout.n == op.n
    j, k = np.triu_indices(op.n, 1)
    joined = layout.joined(j, k)
    nonzero = np.abs(H[j, k]) > 1e-12 * np.abs(H).max()
    cross = layout.layer(j) != layout.layer(k)  # within a layer: only Gauss-Newton's part
    assert not np.any(nonzero & cross & ~joined)  # a circuit joins every non-zero entry
    # most joined cross-layer pairs are non-zero (the rest: dead units, padding-only offsets)
    assert nonzero[joined].mean() > 0.5
    assert layout.population() == int(joined.sum())
    if gn:  # the Gauss-Newton part fills every cross-layer pair
        assert np.array_equal(joined, cross)
    else:  # the circuit rule leaves structural zeros between adjacent layers
        assert (cross & ~joined).sum() > 0.2 * cross.sum()
    # rows_joined_to agrees with joined, column by column
    for col in (0, op.n // 2, op.n - 1):
        rows = layout.rows_joined_to(col)
        every = np.arange(op.n)
        want = every[layout.joined(every, np.full(op.n, col)) & (every != col)]
        np.testing.assert_array_equal(rows, want)


def test_a_sample_is_the_same_at_every_epoch_and_lies_in_the_columns_of_nonzero_entries():
    op, H = _dense("mlp-4-6-5-1-T0")
    layout = circuit_layout(op.param_shapes)
    (r, c, pop), (ur, uc, total) = circuit_entries(layout, 30, 6, uniform=10, seed=4)
    (r2, c2, _), (ur2, uc2, _) = circuit_entries(layout, 30, 6, uniform=10, seed=4)
    np.testing.assert_array_equal(r, r2)
    np.testing.assert_array_equal(ur, ur2)
    assert len(r) == 30 and len(ur) == 10 and total == layout.population()
    assert np.all(layout.joined(r, c)) and np.all(layout.joined(ur, uc))
    ref = nonzero_entries(op, 30, 6, seed=4)  # the same columns
    assert set(c.tolist()) <= set(ref.cols.tolist()) | set(np.unique(c).tolist())
    assert set(np.unique(c).tolist()) <= set(
        np.sort(np.random.default_rng(4).choice(op.n, 6, replace=False)).tolist()
    )
    pairs = {(min(a, b), max(a, b)) for a, b in itertools.chain(zip(r, c), zip(ur, uc))}
    assert len(pairs) == 40  # distinct, unordered
    assert pop >= 30


def test_a_model_that_is_not_a_chain_has_no_layout_and_bad_counts_are_refused():
    assert circuit_layout([(3, 2), (4,)]) is None  # a bias
    assert circuit_layout([(3, 2), (1, 5)]) is None  # 5 inputs after 3 outputs
    layout = circuit_layout([(3, 2), (1, 3)])
    with pytest.raises(ConfigError, match="exceed N = 9"):
        circuit_entries(layout, 2, 10, seed=0)
    (_, _, pop), (ur, _, total) = circuit_entries(layout, 2, 2, uniform=100, seed=0)
    assert total == 3 * 2 * 1 and len(ur) == total - 2  # the joined pairs left over
