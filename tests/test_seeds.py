"""umwelt.seeds against the four seed schemes the drivers and the Hessian package wrote inline."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from umwelt.errors import ConfigError
from umwelt.seeds import index_seed, streams

SEEDS = st.integers(0, 2**64 - 1)
HESSIAN_STREAMS = (
    "subset", "gates", "extremes", "slq", "summary", "checks", "entries", "bootstrap", "corr",
)  # fmt: skip


# -- the old schemes, verbatim (the oracles) -------------------------------------------------------


def _simulate_seeds(seed):  # sim/simulate.py: _seeds
    state = np.random.SeedSequence(seed).generate_state(3, dtype=np.uint64)
    return {
        "data_order": int(state[0] >> 1),
        "gate_noise": int(state[1] >> 1),
        "evaluation": int(state[2] >> 1),
    }


def _train_seeds(seed, rank=0):  # sim/train.py: seeds
    data_order = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0]
    per_rank = np.random.SeedSequence(seed, spawn_key=(rank,)).generate_state(2, dtype=np.uint64)
    return {
        "data_order": int(data_order >> 1),
        "gate_noise": int(per_rank[0] >> 1),
        "evaluation": int(per_rank[1] >> 1),
    }


def _hessian_seeds(seed):  # sim/hessian.py: _seeds
    state = np.random.SeedSequence(seed).generate_state(len(HESSIAN_STREAMS), dtype=np.uint64)
    return {name: int(s >> 1) for name, s in zip(HESSIAN_STREAMS, state, strict=True)}


def _example_seed(seed, index):  # umwelt/nn/hessian/fixed_gates.py: _example_seed
    state = np.random.SeedSequence((seed, index)).generate_state(2, np.uint64)
    return int(state[0]) & ((1 << 63) - 1)


def _vector_seed(seed, i):  # the SLQ start vectors: umwelt/nn/hessian/quadrature.py: slq
    return int(np.random.SeedSequence((int(seed), i)).generate_state(1)[0])


# -- equality ------------------------------------------------------------------------------------


@given(SEEDS)
def test_a_word_does_not_depend_on_how_many_are_drawn(seed):
    ss = np.random.SeedSequence(seed)
    assert ss.generate_state(1, np.uint64)[0] == ss.generate_state(3, np.uint64)[0]
    np.testing.assert_array_equal(
        ss.generate_state(3, np.uint64), ss.generate_state(9, np.uint64)[:3]
    )


@given(SEEDS)
def test_simulate_scheme(seed):
    assert streams(seed, ("data_order", "gate_noise", "evaluation")) == _simulate_seeds(seed)


@given(SEEDS, st.integers(0, 64))
def test_train_scheme(seed, rank):
    got = {
        **streams(seed, ("data_order",)),
        **streams(seed, ("gate_noise", "evaluation"), spawn_key=(rank,)),
    }
    assert got == _train_seeds(seed, rank)
    assert got["data_order"] == _simulate_seeds(seed)["data_order"]  # the same word 0


@given(SEEDS)
def test_hessian_scheme(seed):
    assert streams(seed, HESSIAN_STREAMS) == _hessian_seeds(seed)


@given(SEEDS, st.integers(0, 2**40))
def test_index_seeds_are_the_example_and_vector_seeds(seed, index):
    assert index_seed(seed, index) == _example_seed(seed, index)
    assert index_seed(seed, index, bits=32) == _vector_seed(seed, index)
    assert index_seed(np.int64(3), np.int64(4)) == _example_seed(3, 4)


def test_streams_are_distinct_and_in_range():
    s = streams(0, HESSIAN_STREAMS)
    assert len(set(s.values())) == len(s) and all(0 <= v < 2**63 for v in s.values())
    assert streams(0, ("a",), spawn_key=(1,)) != streams(0, ("a",))
    assert streams(5, ()) == {}


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        (lambda: streams(-1, ("a",)), "-1"),
        (lambda: streams(1.5, ("a",)), "1.5"),
        (lambda: streams(True, ("a",)), "True"),
        (lambda: streams(0, ("a", "b", "a")), "'a'"),
        (lambda: streams(0, ("a",), spawn_key=(-2,)), "-2"),
        (lambda: index_seed(0, -3), "-3"),
        (lambda: index_seed(0, 1, bits=65), "65"),
        (lambda: index_seed(0, 1, bits=0), "0"),
    ],
)
def test_bad_arguments_raise_config_error_naming_the_value(call, shown):
    with pytest.raises(ConfigError, match=shown):
        call()


def test_umwelt_seeds_does_not_import_torch():
    code = "import sys, umwelt.seeds; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
