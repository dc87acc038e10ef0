"""`umwelt hessian RUN` and `umwelt train --hessian-at`: files, values against dense Hessians,
the shared grid, --json, and every bad input (one line, exit code 2, nothing written)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from typer.testing import CliRunner

from sim.cli import app
from sim.figures import make_figures
from sim.hessian import (
    SETTINGS,
    HessianConfig,
    HessianSettings,
    load_epoch,
    parse_settings,
    record_epoch,
    run,
)
from sim.runs import Run, to_jsonable
from sim.simulate import SimulateConfig
from sim.simulate import run as simulate
from sim.train import TrainConfig
from sim.train import run as train
from umwelt.errors import ConfigError
from umwelt.nn.hessian import ModelHessian

runner = CliRunner()
DATA = "teacher:n=60,dim=5,n_test=20"
SMALL = {"start_vectors": 4, "bootstrap": 40, "grid_points": 201}  # quick settings
SMALL_ARGS = ["--start-vectors", "4", "--bootstrap", "40", "--grid-points", "201"]
ROW_KEYS = {
    "epoch",
    "n_params",
    "n_examples",
    "hvp_mode",
    "lambda_min",
    "lambda_max",
    "neg_mass",
    "asymmetry",
    "density_asymmetry",
    "trace",
    "trace_se",
    "frac_means_below_015",
    "coupling_exponent",
    "loss",
    "active_fraction",
    "hinge_diag_max_abs",
    "hinge_ok",
    "beyond_grid",
    "n_live",
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _simulate(out: Path, hidden: tuple[int, ...]) -> Path:
    cfg = SimulateConfig(
        hidden=hidden, epochs=2, dataset=DATA, samples=2, batch_size=16, lr=0.05, out=out
    )
    return simulate(cfg).run_dir


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    """A 3-layer simulate run at T = 0.1, analysed on a fixed subset of 40 of its 60 examples."""
    d = _simulate(tmp_path_factory.mktemp("runs") / "sim", (6, 5))
    rows = run(HessianConfig(run=d, examples=40, figures=False, **SMALL))
    return d, rows


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """A train run at T = 0 with `--hessian-at 0,2` (default Hessian settings)."""
    out = tmp_path_factory.mktemp("runs") / "train"
    cfg = TrainConfig(
        model="mlp:6,4",
        dataset=DATA,
        epochs=2,
        batch_size=16,
        lr=0.05,
        observe_at=(0,),
        hessian_at=(0, 2),
        eval_batch_size=64,
        out=out,
    )
    result = train(cfg, figures=False, analyse_hessian=record_epoch)
    return result.run_dir


def _rows(d: Path, sub: str = "hessian") -> list[dict]:
    return [json.loads(x) for x in (d / sub / "hessian.jsonl").read_text().splitlines()]


def _tree(d: Path) -> dict[str, int]:
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in d.rglob("*")}


def _fails(args: list[str], needle: str) -> str:
    res = runner.invoke(app, ["hessian", *args])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output
    return lines[0]


# -- end to end ------------------------------------------------------------------------------------


def test_simulate_run_files_keys_and_sane_values(sim_run):
    d, rows = sim_run
    assert [r["epoch"] for r in rows] == [0, 2] and _rows(d) == to_jsonable(rows)
    names = {p.name for p in (d / "hessian").iterdir()}
    assert names == {"config.json", "hessian.jsonl", "epoch_0000.npz", "epoch_0002.npz"}
    stored = json.loads((d / "hessian" / "config.json").read_text())
    assert stored["kind"] == "simulate" and stored["temperature"] == 0.1
    assert stored["settings"]["examples"] == 40 and stored["grid_scale"] == "symlog"
    N = 5 * 6 + 6 * 5 + 5
    grids, ids, pairs = [], [], []
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert r["n_params"] == N and r["n_examples"] == 40 and r["lanczos_steps"] == N
        assert r["lambda_min"] <= 0 <= r["lambda_max"] and 0 <= r["neg_mass"] <= 1
        assert 0 <= r["frac_means_below_015"] <= 1 and r["beyond_grid"] == 0
        # per-example normalization divides every ratio by √n ≥ 1: never a smaller fraction
        assert r["frac_means_below_015"] <= r["frac_means_below_015_per_example"] <= 1
        # hinge loss, no biases: a zero diagonal (exactly, by autodiff) and trace ≈ 0
        assert r["hinge_diag_max_abs"] == 0.0 and r["hinge_ok"]
        # its trace test takes the SLQ runs' estimate (no probe vectors of its own)
        assert (r["hinge_trace"], r["hinge_trace_se"]) == (r["trace"], r["trace_se"])
        # Hutchinson with Rademacher v and a zero diagonal: Var(vᵀHv) = 2‖H‖²_F = 2 N m2
        assert abs(r["trace"]) <= 5 * math.sqrt(2 * N * r["m2"] / r["start_vectors"])
        with np.load(d / "hessian" / f"epoch_{r['epoch']:04d}.npz") as z:
            grids.append(z["grid"])
            ids.append(z["example_ids"])
            assert z["slq_nodes"].shape == z["slq_weights"].shape == (4, N)
            np.testing.assert_allclose(z["slq_weights"].sum(axis=1), 1.0)
            mass = np.trapezoid(z["density"], z["grid"])
            assert mass == pytest.approx(1.0, abs=0.02)
            assert np.all(z["density_lo"] <= z["density"] + 1e-12)
            assert json.loads(str(z["row"]))["epoch"] == r["epoch"]
            live = z["entry_live"]
            assert live.sum() == r["n_live"] > 0
            # pairs some circuit joins, the same at every epoch (entries of dead units: not live)
            assert r["entry_rule"] == "circuit" and live.mean() > 0.5
            pairs.append((z["entry_rows"], z["entry_cols"], z["entry_uniform"]))
            u = z["entry_uniform"]
            assert r["corr_entries"] == "uniform" and u.any()
            assert z["corr_sub"].shape[0] == min(100, int((u & live).sum()))
            assert r["frac_means_below_015_lo"] <= r["frac_means_below_015"]
            assert r["frac_means_below_015"] <= r["frac_means_below_015_hi"]
    for a, b in zip(pairs[0], pairs[1], strict=True):
        np.testing.assert_array_equal(a, b)
    stored = json.loads((d / "hessian" / "config.json").read_text())["entry_pairs"]
    np.testing.assert_array_equal(stored["rows"], pairs[0][0])
    np.testing.assert_array_equal(grids[0], grids[1])  # one grid for every epoch
    np.testing.assert_array_equal(grids[0], -grids[0][::-1])
    np.testing.assert_array_equal(ids[0], ids[1])  # the same subset at every epoch
    assert len(ids[0]) == 40 and len(np.unique(ids[0])) == 40


def test_two_layer_spectrum_is_symmetric(tmp_path):
    d = _simulate(tmp_path / "two", (8,))
    rows = run(HessianConfig(run=d, epochs="2", entries=0, figures=False, **SMALL))
    (r,) = rows
    assert r["n_params"] == 5 * 8 + 8
    # k = N: the extremes are eigenvalues; ±σ_k(B) for H = [[0, B], [Bᵀ, 0]]
    assert r["lambda_min"] == pytest.approx(-r["lambda_max"], rel=1e-10)
    assert abs(r["asymmetry"]) <= 4 * r["asymmetry_se"]
    assert math.isnan(r["frac_means_below_015"])  # entries=0: none sampled
    assert not (d / "figures" / "hessian_spectrum.png").exists()


def test_train_run_extremes_equal_the_dense_hessian(train_run):
    rows = _rows(train_run)
    assert [r["epoch"] for r in rows] == [0, 2]
    cfg = json.loads((train_run / "config.json").read_text())
    assert cfg["observe_at"] == [0, 2] and cfg["hessian_at"] == [0, 2]  # made observed
    for r in rows:
        model, X, y, loss, T = load_epoch(train_run, r["epoch"])
        assert T == 0.0 and loss == "hinge"
        lam = np.linalg.eigvalsh(ModelHessian(model, X, y, loss=loss).dense().numpy())
        scale = np.abs(lam).max()
        assert r["lambda_min"] == pytest.approx(lam[0], abs=1e-9 * scale)
        assert r["lambda_max"] == pytest.approx(lam[-1], abs=1e-9 * scale)
        assert r["n_examples"] == 60 and r["hinge_diag_max_abs"] == 0.0


def test_hessian_at_during_training_equals_umwelt_hessian_afterwards(train_run):
    during = _rows(train_run)
    with np.load(train_run / "hessian" / "epoch_0002.npz") as z:
        before = {k: z[k] for k in ("density", "slq_nodes", "entry_samples", "grid")}
    res = runner.invoke(app, ["hessian", str(train_run), "--epochs", "2", "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    (after,) = json.loads(res.stdout)
    ref = during[1]
    assert set(after) == set(ref)
    for key, value in ref.items():
        if key == "wall_s":
            continue
        if isinstance(value, float):
            assert after[key] == pytest.approx(value, rel=1e-12, abs=1e-300), key
        else:
            assert after[key] == value, key
    assert _rows(train_run)[1]["epoch"] == 2 and len(_rows(train_run)) == 2
    with np.load(train_run / "hessian" / "epoch_0002.npz") as z:
        for k, v in before.items():
            np.testing.assert_allclose(z[k], v, rtol=1e-12, err_msg=k)


def test_plot_draws_the_hessian_figures(train_run):
    written = {p.name for p in make_figures(train_run)}
    for name in (
        "hessian_entries.png",
        "hessian_followed.png",
        "hessian_means.png",
        "hessian_spectrum.png",
    ):
        assert name in written
        img = imread(train_run / "figures" / name)
        assert img.shape[0] > 300 and img.shape[1] > 600 and img.std() > 0.05, name


def test_relu_twin_of_a_simulate_run(sim_run, tmp_path):
    d = tmp_path / "sim"
    shutil.copytree(sim_run[0], d)
    r = Run.open(d)
    assert r.temperature("relu") == 0.0 and list(r.checkpoints("relu")) == [0, 2]
    rows = run(HessianConfig(run=d, net="relu", epochs=(2,), entries=0, figures=False, **SMALL))
    assert rows[0]["net"] == "relu" and (d / "hessian_relu" / "epoch_0002.npz").is_file()


def test_other_settings_need_fresh(sim_run, tmp_path):
    d = tmp_path / "sim"
    shutil.copytree(sim_run[0], d)
    with pytest.raises(ConfigError, match="examples = 40, not None"):
        run(HessianConfig(run=d, epochs=(0,), entries=0, figures=False, **SMALL))
    rows = run(HessianConfig(run=d, epochs=(0,), entries=0, fresh=True, figures=False, **SMALL))
    assert rows[0]["n_examples"] == 60 and [r["epoch"] for r in _rows(d)] == [0]
    assert sorted(p.name for p in (d / "hessian").glob("*.npz")) == ["epoch_0000.npz"]


# -- bad input: one line, exit code 2, nothing written ---------------------------------------------


def test_not_a_run_and_no_checkpoints(train_run, tmp_path):
    _fails([str(tmp_path / "nowhere")], "no run directory")
    (tmp_path / "x.txt").write_text("hello")
    _fails([str(tmp_path)], "not a run directory of umwelt train or umwelt simulate: no config")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(train_run / "config.json", bare)
    shutil.copy(train_run / "metrics.jsonl", bare)
    _fails([str(bare)], "has no checkpoints")
    assert sorted(p.name for p in bare.iterdir()) == ["config.json", "metrics.jsonl"]


def test_bad_epochs_requests_and_settings(train_run):
    tree = _tree(train_run)
    _fails([str(train_run), "--epochs", "1"], "epoch 1 is not in the run")
    _fails([str(train_run), "--epochs", "two"], "comma-separated")
    _fails([str(train_run), "--lanczos-steps", "500"], "exceeds the Hessian's dimension N = 58")
    _fails([str(train_run), "--extreme-steps", "59"], "N = 58")
    _fails([str(train_run), "--entries", "100000"], "--entries 100000")
    _fails([str(train_run), "--examples", "61"], "exceeds the 60 training examples")
    _fails([str(train_run), "--net", "relu"], "for simulate runs")
    _fails([str(train_run), "--reorth", "some"], "reorth")
    _fails([str(train_run), "--bootstrap", "5"], "bootstrap resamples must be an integer ≥ 20")
    _fails([str(train_run), "--lanczos-steps", "20"], "lanczos_steps = 58, not 20")
    assert _tree(train_run) == tree


def _nan_copy(src: Path, dst: Path, epoch: int) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("hessian", "figures"))
    path = dst / "checkpoints" / f"model_epoch_{epoch:04d}.pt"
    state = torch.load(path, weights_only=True)
    first = next(iter(state))
    state[first][0, 0] = float("nan")
    torch.save(state, path)
    return dst


def test_non_finite_product_stops_at_that_epoch(train_run, tmp_path):
    d = _nan_copy(train_run, tmp_path / "nan2", 2)
    line = _fails([str(d), *SMALL_ARGS, "--no-figures"], "epoch 2")
    assert "not finite" in line and "epochs analysed before it: 0" in line
    assert [r["epoch"] for r in _rows(d)] == [0]  # the epoch before it stays
    assert sorted(p.name for p in (d / "hessian").glob("*.npz")) == ["epoch_0000.npz"]
    d0 = _nan_copy(train_run, tmp_path / "nan0", 0)
    _fails([str(d0), *SMALL_ARGS], "nothing was written")
    assert not (d0 / "hessian").exists()


def test_no_trainable_parameters_is_surfaced(train_run, tmp_path, monkeypatch):
    d = tmp_path / "frozen"
    shutil.copytree(train_run, d, ignore=shutil.ignore_patterns("hessian"))
    tree = _tree(d)
    build = Run.build_model
    monkeypatch.setattr(
        Run, "build_model", lambda self, *a, **k: build(self, *a, **k).requires_grad_(False)
    )
    _fails([str(d)], "no trainable parameters")
    assert _tree(d) == tree


def test_config_errors_name_the_value(train_run):
    with pytest.raises(ConfigError, match="run directory is required"):
        HessianConfig().validated()
    with pytest.raises(ConfigError, match="extremes must be one of slq, lanczos, eigsh"):
        HessianConfig(run=train_run, extremes="arpack").validated()
    with pytest.raises(ConfigError, match="grid margin must be ≥ 1"):
        HessianConfig(run=train_run, grid_margin=0.5).validated()
    with pytest.raises(ConfigError, match="hessian-at epoch 9 is outside"):
        TrainConfig(dataset=DATA, epochs=2, hessian_at=(0, 9), out=train_run / "new").validated()


def test_record_epoch_warns_instead_of_stopping_the_training(train_run):
    with pytest.warns(RuntimeWarning, match="epoch 7 was not recorded.*epoch 7 is not in"):
        assert record_epoch(train_run, 7) is None


def test_hessian_settings_reach_the_analyses_during_training(tmp_path):
    out = tmp_path / "train"
    settings = "lanczos_steps=6,start-vectors=3,entries=12,bootstrap=20,grid_points=101,seed=3"
    res = CliRunner().invoke(
        app,
        ["train", "--model", "mlp:5,4", "--dataset", DATA, "--epochs", "1", "--batch-size", "16",
         "--hessian-at", "1", "--hessian-settings", settings, "--out", str(out), "--quiet"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    (row,) = _rows(out)
    assert row["epoch"] == 1 and row["lanczos_steps"] == 6 and row["n_entries"] <= 12
    stored = json.loads((out / "hessian" / "config.json").read_text())["settings"]
    assert stored["lanczos_steps"] == 6 and stored["start_vectors"] == 3
    assert stored["bootstrap"] == 20 and stored["grid_points"] == 101 and stored["seed"] == 3
    assert Run.open(out).config.hessian == parse_settings(settings)


def test_hessian_settings_are_the_config_fields_and_parse_strictly():
    fields = {f.name for f in dataclasses.fields(HessianConfig)}
    assert set(SETTINGS) <= fields and not {"run", "epochs", "device", "net"} & set(SETTINGS)
    assert parse_settings("reorth=none, entries=0,grid_bound=2.5,examples=none") == (
        HessianSettings(reorth="none", entries=0, grid_bound=2.5, examples=None)
    )
    assert parse_settings("subset=40") == HessianSettings(examples=40)  # the old name
    assert parse_settings(None) is None is parse_settings(" ")
    for text, needle in [
        ("lanczos_steps", "KEY=VALUE, got 'lanczos_steps'"),
        ("steps=3", "unknown Hessian setting 'steps'"),
        ("entries=many", "entries must be an integer, got 'many'"),
        ("smoothing=-1", "smoothing"),
        ("reorth=partial", "reorth must be full or none, got 'partial'"),
        ("bootstrap=5", "bootstrap"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(needle)):
            parse_settings(text)


def test_bad_hessian_settings_of_train_exit_2_and_write_nothing(tmp_path):
    for extra, needle in [
        (["--hessian-at", "1", "--hessian-settings", "steps=3"], "unknown Hessian setting"),
        (["--hessian-settings", "entries=3"], "--hessian-settings needs --hessian-at"),
    ]:
        out = tmp_path / "never"
        res = CliRunner().invoke(
            app, ["train", "--model", "mlp:5", "--dataset", DATA, "--out", str(out), *extra]
        )
        assert res.exit_code == 2 and needle in res.output, res.output
        assert not out.exists()


@pytest.mark.parametrize(("U", "K", "expect"), [(0, 400, 0), (30, 400, 30), (500, 400, 200)])
def test_uniform_entries_count_among_the_k(U, K, expect):
    """``uniform_entries`` of the K are uniform pairs (at most K/2), the rest in the columns;
    ``corr_entries="columns"`` draws none."""
    from types import SimpleNamespace

    from sim.hessian.entries import draw_entries
    from sim.runs.hessian import HessianSettings

    shapes = ((16, 8), (16, 16), (1, 16))
    op = SimpleNamespace(param_shapes=shapes, n=sum(a * b for a, b in shapes))
    seeds = {"entries": 3}
    for corr, want in (("uniform", expect), ("columns", 0)):
        cfg = HessianSettings(uniform_entries=U, corr_entries=corr).validated()
        sample, uniform, rule, _ = draw_entries(op, cfg, K, 60, seeds, loss_name="hinge")
        assert rule == "circuit" and sample.rows.size == uniform.size == K
        assert int(uniform.sum()) == want
        # the column entries lie in 60 columns, the uniform ones spread over many
        assert np.unique(sample.cols[~uniform]).size <= 60
        if want >= 30:
            assert np.unique(sample.cols[uniform]).size > 10
