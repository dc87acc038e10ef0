"""`umwelt train` end to end: the run directory, exact resume after a crash or a kill, bad input."""

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sim.cli import app
from sim.train import PAPER_OBSERVE_AT, TrainConfig, resume_config, run, seeds
from umwelt.errors import ConfigError

ROOT = Path(__file__).parents[1]
DATA = "teacher:n=90,dim=8,n_test=40"
TINY = TrainConfig(
    model="mlp:8,6",
    dataset=DATA,
    epochs=3,
    batch_size=16,
    lr=0.05,
    observe_at=(0, 2, 3),
    eval_batch_size=32,
)
TINY_ARGS = [
    "--model", "mlp:8,6", "--dataset", DATA, "--epochs", "3", "--batch-size", "16",
    "--lr", "0.05", "--observe-at", "0,2,3", "--eval-batch-size", "32",
]  # fmt: skip
ROW_KEYS = {
    "epoch",
    "loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "epoch_loss",
    "order_parameter",
    "grad_norm",
    "steps",
    "wall_s",
    "timing",
    # the phase observables and the online phase (issue: phases through training)
    "n_unsatisfied",
    "frac_unsatisfied",
    "margin_quantiles",
    "layer_grad_norms",
    "weight_norms",
    "effective_temperature",
    "phase",
}

runner = CliRunner()


def _strip(rows):
    """The rows without their clock readings (``wall_s``, ``timing``)."""
    return [{k: v for k, v in r.items() if k not in ("wall_s", "timing")} for r in rows]


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _weights(run_dir):
    ck = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return ck["model"]


@pytest.fixture(scope="module")
def hot_run(tmp_path_factory):
    """An uninterrupted run at T = 0.5 (gate noise and evaluation draws in play)."""
    out = tmp_path_factory.mktemp("runs") / "hot"
    return run(replace(TINY, temperature=0.5, out=out), figures=False)


def test_run_directory_has_every_file_and_key(hot_run):
    d = hot_run.run_dir
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["model"] == "mlp:8,6" and cfg["temperature"] == 0.5 and cfg["world_size"] == 1
    assert cfg["observe_at"] == [0, 2, 3] and cfg["n_train"] == 90 and cfg["n_test"] == 40
    assert [layer["shape"] for layer in cfg["layers"]] == [[8, 8], [6, 8], [1, 6]]
    assert cfg["seeds"]["rank_0"] == seeds(0, 0) and "torch" in cfg["versions"]
    rows = _rows(d)
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["epoch_loss"] is None and rows[1]["steps"] == 6  # ceil(90 / 16)
    for r in rows:
        assert set(r) == ROW_KEYS
        assert 0 <= r["train_acc"] <= 1 and r["loss"] >= 0
        assert math.isclose(r["order_parameter"], 0.05 * r["grad_norm"] ** 2)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert sorted(p.name for p in (d / "observations").iterdir()) == [
        "epoch_0000.npz",
        "epoch_0002.npz",
        "epoch_0003.npz",
    ]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epoch"] == 3
    assert not list(d.rglob("*.tmp"))


def test_checkpoints_load_with_weights_only(hot_run):
    d = hot_run.run_dir
    ck = torch.load(d / "checkpoints" / "last.pt", weights_only=True)
    assert ck["epoch"] == 3 and ck["in_epoch"] is None and ck["world_size"] == 1
    assert len(json.loads(ck["metrics"])) == 4
    assert {"data_order", "gate_noise", "evaluation", "torch_cpu"} <= set(ck["rng"])
    assert ck["optimizer"]["state"]  # momentum buffers
    init = torch.load(d / "checkpoints" / "model_epoch_0000.pt", weights_only=True)
    final = torch.load(d / "checkpoints" / "model_epoch_0003.pt", weights_only=True)
    assert all(torch.equal(final[k], ck["model"][k]) for k in final)
    assert not all(torch.equal(init[k], final[k]) for k in init)


def test_same_seed_same_run_other_seed_other_run(hot_run, tmp_path):
    again = run(replace(TINY, temperature=0.5, out=tmp_path / "again"), figures=False)
    other = run(replace(TINY, temperature=0.5, seed=1, out=tmp_path / "other"), figures=False)
    assert _strip(again.metrics) == _strip(hot_run.metrics)
    assert _strip(other.metrics) != _strip(hot_run.metrics)


class Crash(Exception):
    pass


def _crash_after(n):
    count = 0

    def on_step(info):
        nonlocal count
        count += 1
        if count == n:
            raise Crash

    return on_step


@pytest.mark.parametrize("crash_step", [9, 10], ids=["after-checkpoint", "between-checkpoints"])
def test_resume_after_crash_mid_epoch_is_exact(hot_run, tmp_path, crash_step):
    out = tmp_path / "crashed"
    cfg = replace(TINY, temperature=0.5, checkpoint_every=3, out=out)
    with pytest.raises(Crash):  # step 9 = epoch 2, step 3: a mid-epoch checkpoint was written
        run(cfg, on_step=_crash_after(crash_step), figures=False)
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ck["epoch"] == 1 and ck["in_epoch"]["step"] == 3
    assert json.loads((out / "summary.json").read_text())["status"].startswith("failed")
    resumed = run(resume_config(out), resume=True, figures=False)
    assert _strip(resumed.metrics) == _strip(hot_run.metrics)
    assert _strip(_rows(out)) == _strip(_rows(hot_run.run_dir))
    a, b = _weights(out), _weights(hot_run.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("epoch_0002.npz", "epoch_0003.npz"):
        with (
            np.load(out / "observations" / name) as x,
            np.load(hot_run.run_dir / "observations" / name) as y,
        ):
            assert x.files == y.files
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k])


def test_resume_of_a_finished_run_changes_nothing(hot_run, tmp_path):
    before = _rows(hot_run.run_dir)
    res = run(resume_config(hot_run.run_dir), resume=True, figures=False)
    assert _rows(hot_run.run_dir) == before and res.summary["status"] == "completed"


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_reproduces(tmp_path):
    """A real kill: the CLI SIGKILLs itself after step 11 = epoch 2, step 5 (checkpoints every 3
    steps: the last is epoch 2, step 3, so steps 4 and 5 are lost and redone)."""
    out, ref = tmp_path / "killed", tmp_path / "ref"
    args = [*TINY_ARGS, "--temperature", "0.5", "--checkpoint-every", "3", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", "train", *args, "--out", str(out)]
        + ["--no-figures", "--kill-after-steps", "11"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == -9, proc.stderr  # killed, no clean-up ran
    assert not (out / "summary.json").exists()
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ck["epoch"] == 1 and ck["in_epoch"]["step"] == 3
    res = runner.invoke(app, ["train", "--resume", str(out), "--quiet", "--no-figures"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", *args, "--out", str(ref), "--no-figures"])
    assert res.exit_code == 0, res.output
    assert _strip(_rows(out)) == _strip(_rows(ref))
    a, b = _weights(out), _weights(ref)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_a_changed_option_names_it(hot_run):
    before = (hot_run.run_dir / "metrics.jsonl").read_bytes()
    for args, key in [
        (["--lr", "0.1"], "lr"),
        (["--temperature", "0"], "temperature"),
        (["--model", "mlp:8"], "model"),
        (["--epochs", "5"], "epochs"),
    ]:
        res = runner.invoke(app, ["train", "--resume", str(hot_run.run_dir), *args, "--quiet"])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and f"{key} = " in lines[0]
    res = runner.invoke(  # the same values again are fine (the run is complete: nothing to do)
        app, ["train", "--resume", str(hot_run.run_dir), "--lr", "0.05", "--quiet", "--no-figures"]
    )
    assert res.exit_code == 0, res.output
    assert (hot_run.run_dir / "metrics.jsonl").read_bytes() == before


def test_resume_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps({"model": "mlp:4", "dataset": DATA}))
    with pytest.raises(ConfigError, match="no checkpoint"):
        resume_config(empty)
    with pytest.raises(ConfigError, match="no such run directory"):
        resume_config(tmp_path / "nowhere")
    res = runner.invoke(app, ["train", "--resume", str(empty), "--quiet"])
    assert res.exit_code == 2 and "no checkpoint" in res.output


def test_out_that_exists_is_refused_and_kept(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = runner.invoke(app, ["train", *TINY_ARGS, "--out", str(out), "--quiet"])
    assert res.exit_code == 2 and "already exists" in res.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "vgg99"], "vgg99"),
        (["--model", "mlp:8,0"], "mlp:8,0"),
        (["--model", "mlp:8", "--width", "0.01"], "empty"),
        (["--dataset", "nowhere/cifar-10-python.tar.gz"], "nowhere"),
        (["--dataset", "CORRUPT"], "corrupt.tar.gz"),
        (["--dataset", "TRUNCATED"], "truncated.tar.gz"),
        (["--temperature", "-1"], "-1"),
        (["--gate-mode", "hot"], "hot"),
        (["--epochs", "-1"], "epochs"),
        (["--observe-at", "0,99"], "99"),
        (["--dtype", "float16"], "float16"),
    ],
)
def test_bad_input_is_one_clear_line_and_no_directory(tmp_path, args, needle):
    files = {"CORRUPT": b"\x1f\x8b not really gzip", "TRUNCATED": b"\x1f\x8b junk"}
    for name, content in files.items():
        (tmp_path / f"{name.lower()}.tar.gz").write_bytes(content)
    args = [str(tmp_path / f"{a.lower()}.tar.gz") if a in files else a for a in args]
    out = tmp_path / "never"
    res = runner.invoke(app, ["train", *TINY_ARGS, *args, "--out", str(out), "--quiet"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output
    assert not out.exists()


def test_dataset_is_required():
    with pytest.raises(ConfigError, match="--dataset is required"):
        TrainConfig().validated()


def test_observe_at_default_is_the_papers_clipped_plus_the_last():
    assert TrainConfig(dataset="digits", epochs=300).validated().observe_at == PAPER_OBSERVE_AT
    assert TrainConfig(dataset="digits", epochs=35).validated().observe_at == (0, 10, 20, 30, 35)
    assert TrainConfig(dataset="digits", epochs=0).validated().observe_at == (0,)
    assert TrainConfig(dataset="digits", observe_at=(5, 1, 1)).validated().observe_at == (1, 5)


def test_resume_refuses_changed_data_and_a_second_out(hot_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(hot_run.run_dir, copy)
    res = runner.invoke(
        app, ["train", "--resume", str(copy), "--out", str(tmp_path / "other"), "--quiet"]
    )
    assert res.exit_code == 2 and "differs from --resume" in res.output
    cfg = json.loads((copy / "config.json").read_text())
    cfg["data_sha256"] = "0" * 64
    (copy / "config.json").write_text(json.dumps(cfg))
    before = (copy / "checkpoints" / "last.pt").read_bytes()
    res = runner.invoke(app, ["train", "--resume", str(copy), "--quiet", "--no-figures"])
    assert res.exit_code == 2 and "other contents" in res.output, res.output
    assert (copy / "checkpoints" / "last.pt").read_bytes() == before


def test_a_diverging_run_stops_cleanly(tmp_path):
    res = run(replace(TINY, lr=1e8, out=tmp_path / "boom"), figures=False)
    assert res.summary["status"].startswith("diverged at epoch 1")
    assert [r["epoch"] for r in res.metrics] == [0, 1] and res.metrics[1]["loss"] != 0.0
    rows = _rows(tmp_path / "boom")
    assert rows[1]["loss"] is None  # NaN is written as null


def test_stop_at_zero_loss_ends_a_converged_run(tmp_path):
    cfg = replace(
        TINY,
        model="mlp:32,32",
        epochs=200,
        lr=0.05,
        observe_at=(0,),
        stop_at_zero_loss=True,
        out=tmp_path / "conv",
    )
    res = run(cfg, figures=False)
    last = res.metrics[-1]
    assert last["loss"] == 0.0 and last["order_parameter"] == 0.0 and last["train_acc"] == 1.0
    assert 0 < last["epoch"] < 200
    assert all(r["loss"] > 0 for r in res.metrics[:-1])  # it stopped at the first zero
    assert res.summary["status"] == f"converged at epoch {last['epoch']} (zero training risk)"
    assert (tmp_path / "conv" / "observations" / f"epoch_{last['epoch']:04d}.npz").is_file()


def test_phase_observables_and_online_phases(hot_run):
    from umwelt.phases import PHASES, classify

    rows = _rows(hot_run.run_dir)
    for r in rows:
        assert 0 <= r["n_unsatisfied"] <= 90 and r["frac_unsatisfied"] == r["n_unsatisfied"] / 90
        assert len(r["margin_quantiles"]) == 4 and r["margin_quantiles"] == sorted(
            r["margin_quantiles"]
        )
        assert math.isclose(sum(g * g for g in r["layer_grad_norms"]), r["grad_norm"] ** 2)
        assert len(r["weight_norms"]) == 3 and len(r["effective_temperature"]) == 2
        for t, w in zip(r["effective_temperature"], r["weight_norms"]):
            assert math.isclose(t, 0.5 / w)
        assert r["phase"] in PHASES
        assert (r["n_unsatisfied"] == 0) == (r["loss"] == 0.0)  # one pass, the same gates
    offline = [p.phase for p in classify(rows, stochastic=True)]
    assert [r["phase"] for r in rows] == offline  # online labels equal offline ones
    summary = json.loads((hot_run.run_dir / "summary.json").read_text())
    assert summary["phases"]["final"] == rows[-1]["phase"]
    assert summary["phases"]["thresholds"]["window"] == 10


def test_stop_at_phase(tmp_path):
    out = tmp_path / "stop"
    res = run(
        replace(
            TINY,
            model="mlp:64",
            epochs=60,
            lr=0.1,
            stop_at_phase="converged",
            observe_at=(0,),
            out=out,
        ),
        figures=False,
    )
    last = res.metrics[-1]
    assert last["phase"] == "converged" and last["n_unsatisfied"] == 0
    assert res.summary["status"] == f"stopped at epoch {last['epoch']}: entered the converged phase"
    assert (out / "checkpoints" / f"model_epoch_{last['epoch']:04d}.pt").is_file()
    with pytest.raises(ConfigError, match="stop-at-phase must be one of converged, frustration"):
        replace(TINY, stop_at_phase="plastic").validated()
