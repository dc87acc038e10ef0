"""The runs the hostile tests read, made once per session in tmp_path (nothing is committed)."""

from pathlib import Path

import pytest

from sim import api

DATA = "teacher:n=40,dim=5,n_test=10"


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory) -> Path:
    """A finished ``umwelt simulate`` run (one epoch of a 5-4-1 net)."""
    out = tmp_path_factory.mktemp("runs") / "sim"
    api.simulate(temperature=0.1, hidden=(4,), epochs=1, dataset=DATA, samples=2, out=out)
    return out


@pytest.fixture(scope="session")
def train_run(tmp_path_factory) -> Path:
    """A finished ``umwelt train`` run (one epoch of mlp:4, epochs 0 and 1 observed)."""
    out = tmp_path_factory.mktemp("runs") / "train"
    api.train(model="mlp:4", dataset=DATA, epochs=1, batch_size=8, observe_at=(0, 1), out=out,
              figures=False)  # fmt: skip
    return out
