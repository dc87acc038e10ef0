"""sim.runs: the one owner of run directories — open, decode, read, rebuild — against the files
the drivers write and against hand-made directories."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sim.runs import HessianSettings, Run, SimulateConfig, TrainConfig, parse_settings
from sim.runs.train import write_observation
from sim.simulate import run as simulate
from sim.train import run as train
from umwelt.errors import ConfigError, ShapeError

DATA = "teacher:n=30,dim=5,n_test=10"


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sim"
    cfg = SimulateConfig(hidden=(4, 3), epochs=2, dataset=DATA, samples=2, batch_size=8, out=out)
    return simulate(cfg).run_dir


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "train"
    cfg = TrainConfig(model="mlp:4", dataset=DATA, epochs=2, batch_size=8, observe_at=(0, 2))
    return train(TrainConfig(**{**cfg.__dict__, "out": out}), figures=False).run_dir


def test_a_simulate_run_reads_back_as_written(sim_run):
    run = Run.open(sim_run)
    assert run.kind == "simulate" and isinstance(run.config, SimulateConfig)
    assert run.config.hidden == (4, 3) and run.config.out == sim_run
    rows = run.metrics(required=True)
    assert [r["epoch"] for r in rows] == [0, 1, 2] and run.summary()["status"] == "completed"
    assert list(run.checkpoints()) == [0, 2] and list(run.checkpoints("relu")) == [0, 2]
    assert run.temperature() == run.config.temperature and run.temperature("relu") == 0.0
    state = torch.load(sim_run / "checkpoints" / "relu.pt", weights_only=True)
    model = run.model(net="relu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), state.values()))
    assert model.mode == "relu" and run.model(0).mode == "sample"
    data = run.data()
    assert run.data() is data and data.X_train.ndim == 2  # loaded once, flattened
    assert run.hessian() == ({}, []) and run.hessian_rows() == []


def test_a_train_run_reads_back_as_written(train_run):
    run = Run.open(train_run)
    assert run.kind == "train" and run.config.model == "mlp:4" and run.config.hessian is None
    assert list(run.checkpoints()) == [0, 2]
    assert run.checkpoint("last")[1] == 2 and run.checkpoint("init")[1] == 0
    obs = run.observations()
    assert [int(o["epoch"]) for o in obs] == [0, 2]
    m2 = run.model(2, dtype="float64")
    state = torch.load(train_run / "checkpoints" / "model_epoch_0002.pt", weights_only=True)
    for a, b in zip(m2.state_dict().values(), state.values()):
        torch.testing.assert_close(a, b.double(), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="epoch 1 is not in the run"):
        run.model(1)
    with pytest.raises(ConfigError, match="for simulate runs"):
        run.checkpoints("relu")


def test_a_changed_dataset_is_refused(train_run, tmp_path):
    stored = json.loads((train_run / "config.json").read_text())
    d = tmp_path / "moved"
    (d / "checkpoints").mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({**stored, "data_sha256": "0" * 64}))
    with pytest.raises(ConfigError, match="now has other contents"):
        Run.open(d).data()


def test_a_checkpoint_that_does_not_fit_is_one_shape_error(train_run, tmp_path):
    stored = json.loads((train_run / "config.json").read_text())
    d = tmp_path / "wide"
    (d / "checkpoints").mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({**stored, "model": "mlp:5"}))
    src = train_run / "checkpoints" / "model_epoch_0000.pt"
    (d / "checkpoints" / "model_epoch_0000.pt").write_bytes(src.read_bytes())
    with pytest.raises(ShapeError, match="does not fit the run's configuration"):
        Run.open(d).model(0)
    (d / "checkpoints" / "model_epoch_0000.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read checkpoint"):
        Run.open(d).model(0)


@pytest.mark.parametrize(
    "text, needle",
    [
        (None, "no config.json"),
        ("{oops", "unreadable config.json"),
        ("[1, 2]", "names neither a model nor MLP widths"),
        ('{"model": "mlp:3", "dataset": "digits", "temperature": "warm"}', "temperature"),
        ('{"widths": [3, 1], "hidden": "x"}', "hidden"),
    ],
)
def test_bad_directories_are_one_config_error(tmp_path, text, needle):
    if text is not None:
        (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError, match=needle):
        Run.open(tmp_path)
    with pytest.raises(ConfigError, match="no run directory"):
        Run.open(tmp_path / "nowhere")


def test_configs_round_trip_through_json():
    t = TrainConfig(
        model="mlp:8", dataset="digits", temperature=math.inf, observe_at=(0, 3),
        hessian_at=(3,), hessian=HessianSettings(examples=20, grid_bound=2.0), out=Path("x"),
    )  # fmt: skip
    back = TrainConfig.from_json(json.loads(json.dumps(t.to_json())))
    assert back == t and back.hessian.examples == 20 and back.temperature == math.inf
    s = SimulateConfig(hidden=(3, 2), temperature=math.inf)
    assert SimulateConfig.from_json(json.loads(json.dumps(s.to_json()))) == s


def test_runs_before_the_typed_settings_still_read():
    """Train runs stored the Hessian settings as a string, and the old name subset."""
    old = {"model": "mlp:8", "dataset": "digits", "hessian_settings": "subset=40,entries=3"}
    cfg = TrainConfig.from_json(old)
    assert (
        cfg.hessian
        == HessianSettings(examples=40, entries=3)
        == parse_settings("subset=40,entries=3")
    )
    assert HessianSettings.from_json({"subset": 7}).examples == 7


def test_observations_round_trip(tmp_path):
    obs = {
        "epoch": np.array(4),
        "layer_names": np.array(["a", "b"], dtype=np.str_),
        "weight_hist": np.arange(6).reshape(2, 3),
        "loss": np.array(0.25),
    }
    path = write_observation(tmp_path / "observations" / "epoch_0004.npz", obs)
    (tmp_path / "config.json").write_text(json.dumps({"model": "mlp:3", "dataset": "digits"}))
    (back,) = Run.open(tmp_path).observations()
    assert path.is_file() and set(back) == set(obs) and back["layer_names"].dtype.kind == "U"
    for k in obs:
        np.testing.assert_array_equal(back[k], obs[k])
    assert not list(tmp_path.rglob("*.tmp"))
