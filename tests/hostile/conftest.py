"""The runs the hostile tests read, made once per session in tmp_path (nothing is committed),
and the command line built once per file of the option corpus (``test_hostile_options*.py``)."""

import functools
from pathlib import Path

import pytest

from sim import api

# option_cases.py holds the corpus's check: its asserts rewritten, a failure shows what it compared
pytest.register_assert_rewrite("option_cases")

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


@pytest.fixture(scope="module")
def command_built_once():
    """typer builds the click command anew on every ``invoke`` (70 ms: most of a case's time);
    the command is the same each time, so it is built once here."""
    import typer.testing

    patch = pytest.MonkeyPatch()
    patch.setattr(typer.testing, "_get_command", functools.cache(typer.testing._get_command))
    yield
    patch.undo()
