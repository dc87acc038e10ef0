"""Data-parallel Hessian products: 2 gloo processes against 1 (products, and `umwelt hessian`).

The two-process halves run this file as a script under ``torchrun`` (see ``_worker``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from umwelt.errors import ConfigError
from umwelt.nn import build_mlp
from umwelt.nn.hessian import ModelHessian
from umwelt.nn.hessian.distributed import DistributedModelHessian
from umwelt.nn.parallel import shard_bounds

ROOT = Path(__file__).parents[1]
D = torch.float64
N_EXAMPLES, DIM = 23, 4  # 23 examples on 2 ranks: shards of 12 and 11
INDICES = [0, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 16, 17, 18, 19, 20, 21, 22]  # a subset of 18


def _problem():
    """A 3-layer MLP at T = 0.5 (sampled gates, fixed per example) and its data."""
    g = torch.Generator().manual_seed(3)
    X = torch.randn(N_EXAMPLES, DIM, generator=g, dtype=D)
    y = torch.where(torch.rand(N_EXAMPLES, generator=g, dtype=D) < 0.5, -1.0, 1.0).to(D)
    model = build_mlp((DIM, 5, 4, 1), temperature=0.5, seed=1, dtype=D)
    V = torch.randn(model_size(model), 3, generator=g, dtype=D)
    return model, X, y, V


def model_size(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _products(op) -> dict[str, np.ndarray]:
    _, _, _, V = _problem()
    from umwelt.nn.hessian import lanczos

    res = lanczos(op, 8, seed=2)
    return {
        "matvec": op.matvec(V[:, 0]).numpy(),
        "matmat": op.matmat(V).numpy(),
        "matmat_one_column": op.matmat(V[:, :1]).numpy(),  # the loop of matvecs, summed once
        "lanczos": np.concatenate([res.alphas, res.betas]),
        "dense": op.dense().numpy(),
        "gradient": op.gradient().numpy(),
        "risk": np.array([op.risk()]),
    }


def _worker(out: str) -> None:
    """One rank under torchrun: products of the sharded operator, saved per rank."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    model, X, y, _ = _problem()
    op = DistributedModelHessian(model, X, y, indices=INDICES, batch_size=4, loss="logistic")
    res = _products(op) | {"shard": np.array([op.shard.start, op.shard.stop])}
    assert op.any_failed(op.rank == 1) and not op.any_failed(False)
    np.savez(Path(out) / f"rank{dist.get_rank()}.npz", **res)
    dist.barrier()  # no rank tears gloo down under a peer still in a collective
    dist.destroy_process_group()
    # the results are saved: skip the interpreter's teardown, where gloo's threads once
    # aborted a rank ("terminate called without an active exception", CI 2026-12-02)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _torchrun() -> str:
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("torchrun is not installed beside this Python")
    return exe


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_alone_it_is_the_model_hessian():
    model, X, y, _ = _problem()
    op = DistributedModelHessian(model, X, y, indices=INDICES, loss="logistic")
    one = ModelHessian(model, X, y, indices=INDICES, loss="logistic")
    assert (op.rank, op.world_size, op.distributed, op.n_total) == (0, 1, False, len(INDICES))
    assert op.shard == slice(0, len(INDICES))
    a, b = _products(op), _products(one)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert op.any_failed(True) and not op.any_failed(False)
    t = torch.ones(2, dtype=D)
    assert op.all_reduce(t) is t and t.tolist() == [1.0, 1.0]
    assert [shard_bounds(5, r, 2) for r in range(2)] == [(0, 3), (3, 5)]
    with pytest.raises(ConfigError, match="example_weights cannot be given"):
        DistributedModelHessian(model, X, y, example_weights=torch.ones(N_EXAMPLES))


@pytest.mark.slow
def test_two_gloo_processes_give_the_products_of_one(tmp_path):
    proc = subprocess.run(
        [_torchrun(), "--standalone", "--nproc-per-node", "2", __file__, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    model, X, y, _ = _problem()
    one = _products(ModelHessian(model, X, y, indices=INDICES, batch_size=4, loss="logistic"))
    with np.load(tmp_path / "rank0.npz") as r0, np.load(tmp_path / "rank1.npz") as r1:
        assert r0["shard"].tolist() == [0, 9] and r1["shard"].tolist() == [9, 18]
        for k, ref in one.items():
            scale = np.abs(ref).max()
            np.testing.assert_allclose(r0[k], ref, rtol=0, atol=1e-13 * scale, err_msg=k)
            np.testing.assert_array_equal(r1[k], r0[k], err_msg=k)  # every rank: the same bits
        scale = np.abs(one["dense"]).max()
        np.testing.assert_allclose(r0["dense"], r0["dense"].T, rtol=0, atol=1e-13 * scale)


@pytest.mark.slow
def test_umwelt_hessian_under_torchrun_equals_one_process(tmp_path):
    from sim.hessian import HessianConfig, run
    from sim.simulate import SimulateConfig
    from sim.simulate import run as simulate

    src = simulate(
        SimulateConfig(
            hidden=(6, 5),
            epochs=2,
            dataset="teacher:n=41,dim=5,n_test=10",
            samples=2,
            batch_size=16,
            out=tmp_path / "src",
        )
    ).run_dir
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(src, one)
    shutil.copytree(src, two)
    args = ["--start-vectors", "4", "--bootstrap", "40", "--grid-points", "201", "--batch-size"]
    args += ["16", "--lanczos-steps", "30"]
    run(
        HessianConfig(
            run=one,
            start_vectors=4,
            bootstrap=40,
            grid_points=201,
            batch_size=16,
            lanczos_steps=30,
            figures=False,
        )
    )
    proc = subprocess.run(
        [_torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "sim.cli", "hessian"]
        + [str(two), *args, "--quiet", "--no-figures"],
        capture_output=True,
        text=True,
        timeout=240,
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("hessian results:") == 1  # rank 0 alone reports
    rows1 = [json.loads(x) for x in (one / "hessian" / "hessian.jsonl").read_text().splitlines()]
    rows2 = [json.loads(x) for x in (two / "hessian" / "hessian.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows2] == [0, 2] and rows2[0]["world_size"] == 2
    assert sorted(p.name for p in (two / "hessian").iterdir()) == sorted(
        p.name for p in (one / "hessian").iterdir()
    )
    assert not list(two.rglob("*.tmp"))
    for a, b in zip(rows1, rows2, strict=True):
        assert set(a) == set(b)
        for key, va in a.items():
            if key in ("wall_s", "world_size"):
                continue
            if isinstance(va, float):
                assert b[key] == pytest.approx(va, rel=1e-8, abs=1e-10), key
            else:
                assert b[key] == va, key
    for name in ("epoch_0000.npz", "epoch_0002.npz"):
        with np.load(one / "hessian" / name) as z1, np.load(two / "hessian" / name) as z2:
            for k in ("grid", "slq_nodes", "density", "entry_rows", "entry_samples", "example_ids"):
                np.testing.assert_allclose(z2[k], z1[k], rtol=1e-8, atol=1e-10, err_msg=k)


if __name__ == "__main__":
    _worker(sys.argv[1])
