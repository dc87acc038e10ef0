"""`umwelt simulate` end to end, and every bad input it must refuse cleanly."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from typer.testing import CliRunner

from sim.cli import app
from sim.runs import Run
from sim.simulate import SimulateConfig, run
from umwelt.errors import ConfigError, DataError

TINY = ["--hidden", "8,6", "--epochs", "2", "--samples", "3", "--batch-size", "64", "--quiet"]
ROW_KEYS = {
    "epoch",
    "loss",
    "train_acc",
    "test_acc",
    "relu_loss",
    "relu_train_acc",
    "relu_test_acc",
    "order_parameter",
    "gate_entropy",
    "gate_agreement",
}

runner = CliRunner()


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "t01"
    res = runner.invoke(app, ["simulate", "--temperature", "0.1", "--out", str(out), *TINY])
    assert res.exit_code == 0, res.output
    return out


def test_run_directory_has_every_file_and_key(tiny_run):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["temperature"] == 0.1 and cfg["seed"] == 0 and cfg["hidden"] == [8, 6]
    assert cfg["widths"] == [64, 8, 6, 1]
    assert {"torch", "numpy", "numba", "umwelt", "python"} <= set(cfg["versions"])
    rows = _rows(tiny_run)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert len(r["gate_entropy"]) == 2 and len(r["gate_agreement"]) == 2
        assert all(0 <= v <= 1 for v in r["gate_entropy"] + r["gate_agreement"])
        assert 0 <= r["train_acc"] <= 1 and r["loss"] >= 0 and r["order_parameter"] >= 0
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["epoch"] == 2 and summary["status"] == "completed"
    assert summary["mc_draws"] == 3 and summary["mc_test_acc_se"] >= 0
    for name in ("learning_curves", "gates", "order_parameter"):
        png = tiny_run / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = imread(png)
        assert img.shape[0] > 200 and img.shape[1] > 200 and img.std() > 0  # not blank
    assert not list(tiny_run.rglob("*.tmp"))


def test_checkpoints_load_with_weights_only(tiny_run):
    for name in ("init", "finite_T", "relu"):
        state = torch.load(tiny_run / "checkpoints" / f"{name}.pt", weights_only=True)
        assert [tuple(v.shape) for v in state.values()] == [(8, 64), (6, 8), (1, 6)]
    init = torch.load(tiny_run / "checkpoints" / "init.pt", weights_only=True)
    final = torch.load(tiny_run / "checkpoints" / "finite_T.pt", weights_only=True)
    assert not all(torch.equal(a, b) for a, b in zip(init.values(), final.values()))
    model = Run.open(tiny_run).model(which="relu")
    for a, b in zip(
        model.state_dict().values(),
        torch.load(tiny_run / "checkpoints" / "relu.pt", weights_only=True).values(),
    ):
        assert torch.equal(a, b)


def test_zero_temperature_columns_are_identical(tmp_path):
    res = run(
        SimulateConfig(
            temperature=0.0, hidden=(8,), epochs=3, samples=4, batch_size=50, out=tmp_path / "t0"
        )
    )
    for row in res.metrics:
        for key in (
            *("loss", "train_acc", "test_acc", "test_loss", "order_parameter", "epoch_loss"),
            *("n_unsatisfied", "margin_quantiles", "layer_grad_norms", "weight_norms", "phase"),
        ):
            assert row[key] == row[f"relu_{key}"], (row["epoch"], key)
        assert row["effective_temperature"] == [0.0]
        assert row["gate_entropy"] == [0.0] and row["gate_agreement"] == [1.0]
    assert res.metrics[-1]["loss"] < res.metrics[0]["loss"]  # it learned something


def test_same_seed_same_metrics(tmp_path):
    cfg = dict(temperature=0.5, hidden=(6,), epochs=2, samples=2, batch_size=100)
    a = run(SimulateConfig(**cfg, out=tmp_path / "a")).metrics
    b = run(SimulateConfig(**cfg, out=tmp_path / "b")).metrics
    c = run(SimulateConfig(**cfg, seed=1, out=tmp_path / "c")).metrics
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_finite_temperature_differs_from_relu_and_is_noisy(tmp_path):
    res = run(
        SimulateConfig(
            temperature=2.0, hidden=(16,), epochs=1, samples=8, batch_size=100, out=tmp_path / "hot"
        )
    )
    last = res.metrics[-1]
    assert last["loss"] != last["relu_loss"]
    assert 0 < last["gate_entropy"][0] <= 1 and last["gate_agreement"][0] < 1
    assert res.summary["mc_test_acc_se"] > 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--temperature", "-1"], "-1"),
        (["--temperature", "nan"], "nan"),
        (["--dataset", "cifar11"], "cifar11"),
        (["--hidden", ""], "''"),
        (["--hidden", "32,,4"], "32,,4"),
        (["--hidden", "a"], "'a'"),
        (["--epochs", "0"], "epochs"),
        (["--lr", "-0.5"], "-0.5"),
        (["--momentum", "1.5"], "1.5"),
        (["--device", "tpu"], "tpu"),
        (["--loss", "mse"], "mse"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, needle):
    out = tmp_path / "never"
    res = runner.invoke(app, ["simulate", *args, "--out", str(out), "--quiet"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "afile"
    f.write_text("keep me")
    res = runner.invoke(app, ["simulate", "--out", str(f), *TINY])
    assert res.exit_code == 2 and "is a file" in res.output and str(f) in res.output
    assert f.read_text() == "keep me"


def test_library_raises_the_same_errors(tmp_path):
    with pytest.raises(ConfigError, match="temperature"):
        run(SimulateConfig(temperature=-1, out=tmp_path / "x"))
    with pytest.raises(DataError, match="cifar11"):
        run(SimulateConfig(dataset="cifar11", out=tmp_path / "y"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_console_script_exit_code_and_no_traceback(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "simulate",
            "--temperature",
            "-1",
            "--out",
            str(tmp_path / "z"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: temperature must be a number ≥ 0 (or inf), got -1.0"
    ]
    assert "Traceback" not in res.stderr + res.stdout


def test_infinite_temperature_runs(tmp_path):
    res = run(
        SimulateConfig(
            temperature=math.inf,
            hidden=(4,),
            epochs=1,
            samples=2,
            batch_size=200,
            out=tmp_path / "inf",
        )
    )
    assert np.isclose(res.metrics[-1]["gate_entropy"][0], 1.0)
    cfg = json.loads((tmp_path / "inf" / "config.json").read_text())
    assert cfg["temperature"] == "inf"


def test_phase_observables_of_both_nets(tiny_run):
    from sim.runs import Run
    from umwelt.phases import PHASES, classify

    run = Run.open(tiny_run)
    rows = run.metrics()
    data = run.data()
    relu = run.model(net="relu", dtype="float64")
    X, y = (torch.as_tensor(a, dtype=torch.float64) for a in (data.X_train, data.y_train))
    with torch.no_grad():
        margins = (y * relu(X)).numpy()
    # the twin's last row against an independent forward pass of its saved weights
    assert rows[-1]["relu_n_unsatisfied"] == int((margins < 1).sum())
    for r in rows:
        assert r["phase"] in PHASES and r["relu_phase"] in PHASES
        assert 0 <= r["frac_unsatisfied"] <= 1 and isinstance(r["relu_n_unsatisfied"], int)
        for p in ("", "relu_"):
            g2 = sum(g * g for g in r[f"{p}layer_grad_norms"])
            assert math.isclose(g2, r[f"{p}order_parameter"] / 0.01, rel_tol=1e-9)
        for t, w in zip(r["effective_temperature"], r["weight_norms"]):
            assert math.isclose(t, 0.1 / w)
    assert [r["phase"] for r in rows] == [p.phase for p in classify(rows, stochastic=True)]
    assert [r["relu_phase"] for r in rows] == [p.phase for p in classify(rows, prefix="relu_")]
    summary = run.summary()
    assert summary["phases"]["finite_T"]["final"] == rows[-1]["phase"]
    assert summary["phases"]["relu"]["final"] == rows[-1]["relu_phase"]
