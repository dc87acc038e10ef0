"""Data-parallel training: sharding, the environment, and 2 gloo processes against 1."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sim.distributed import World, env_world
from sim.train import TrainConfig, run
from umwelt.errors import ConfigError

ROOT = Path(__file__).parents[1]
# 41 examples in batches of 8: the last batch has 1 example, so rank 1 gets none in it
DATA = "teacher:n=41,dim=6,n_test=20"
ARGS = [
    "--model", "mlp:7,5", "--dataset", DATA, "--epochs", "2", "--batch-size", "8",
    "--lr", "0.05", "--dtype", "float64", "--observe-at", "0,2", "--eval-batch-size", "7",
]  # fmt: skip


def test_env_world():
    assert env_world({}) == World()
    w = env_world({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (w.rank, w.size, w.local_rank, w.is_main, w.distributed) == (1, 2, 1, False, True)
    for env, needle in [
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2"),
        ({"WORLD_SIZE": "two"}, "'two'"),
        ({"RANK": "1"}, "WORLD_SIZE"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            env_world(env)


@pytest.mark.slow
def test_two_gloo_processes_equal_one_at_zero_temperature(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    two = tmp_path / "two"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "sim.cli", "train", *ARGS]
        + ["--out", str(two), "--quiet", "--no-figures", "--checkpoint-every", "2"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("run directory:") == 1  # rank 0 alone reports
    cfg = json.loads((two / "config.json").read_text())
    assert cfg["world_size"] == 2
    one = run(
        TrainConfig(
            model="mlp:7,5",
            dataset=DATA,
            epochs=2,
            batch_size=8,
            lr=0.05,
            dtype="float64",
            observe_at=(0, 2),
            eval_batch_size=7,
            out=tmp_path / "one",
        ),
        figures=False,
    )
    rows2 = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    assert len(rows2) == len(one.metrics) == 3
    for a, b in zip(one.metrics, rows2):
        for key in ("loss", "train_acc", "test_loss", "test_acc", "order_parameter", "grad_norm"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-15, err_msg=key)
        assert (a["epoch_loss"] is None) == (b["epoch_loss"] is None)
        if a["epoch_loss"] is not None:
            np.testing.assert_allclose(b["epoch_loss"], a["epoch_loss"], rtol=1e-12)
    w1 = torch.load(one.run_dir / "checkpoints" / "last.pt", weights_only=True)
    w2 = torch.load(two / "checkpoints" / "last.pt", weights_only=True)
    assert len(w2["rng"]["gate_noise"]) == 2  # every rank's generator state
    for k in w1["model"]:
        torch.testing.assert_close(w2["model"][k], w1["model"][k], rtol=1e-12, atol=1e-14)
    with (
        np.load(one.run_dir / "observations" / "epoch_0002.npz") as o1,
        np.load(two / "observations" / "epoch_0002.npz") as o2,
    ):
        for k in ("gate_entropy", "gate_agreement", "gate_open", "order_parameter"):
            np.testing.assert_allclose(o2[k], o1[k], rtol=1e-12, err_msg=k)
        np.testing.assert_array_equal(o2["weight_hist"], o1["weight_hist"])
        np.testing.assert_allclose(o2["grad_std"], o1["grad_std"], rtol=1e-10)
