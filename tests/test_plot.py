"""`umwelt plot RUN`: every figure of a train or simulate run (and of its Hessian analysis) is
written and is not blank; anything else is refused in one line."""

import json
import shutil

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from sim.cli import app
from sim.figures import FIGURES, HESSIAN_FIGURES, SIMULATE_FIGURES, make_figures, train_figures
from sim.runs import Run
from sim.train import TrainConfig, run
from umwelt.errors import ConfigError
from umwelt.plotting import plot_layer_series, plot_ridgeline, plot_spectra

runner = CliRunner()
TEACHER = "teacher:n=60,dim=5,n_test=20"
SIM_TINY = ["--hidden", "6,5", "--epochs", "2", "--samples", "2", "--batch-size", "16"]
HESSIAN_TINY = ["--start-vectors", "4", "--bootstrap", "40", "--grid-points", "201", "--quiet"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "p"
    cfg = TrainConfig(
        model="mlp:6,4",
        dataset="teacher:n=64,dim=5,n_test=20",
        temperature=0.3,
        epochs=2,
        batch_size=16,
        lr=0.05,
        eval_batch_size=64,
    )
    run(TrainConfig(**{**cfg.__dict__, "out": out}), figures=False)
    return out


def test_plot_command_writes_every_figure(tiny_run):
    res = runner.invoke(app, ["plot", str(tiny_run)])
    assert res.exit_code == 0, res.output
    for name in FIGURES:
        png = tiny_run / "figures" / f"{name}.png"
        assert str(png) in res.output
        img = imread(png)
        assert img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 0.05, name


def test_plot_of_a_run_without_observations(tiny_run, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_run, bare, ignore=shutil.ignore_patterns("observations", "figures"))
    written = {p.stem for p in make_figures(bare)}
    assert written == {"learning_curves", "order_parameter"}


def test_plot_refuses_what_is_not_a_run(tmp_path):
    res = runner.invoke(app, ["plot", str(tmp_path)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "is not a run directory of umwelt train or umwelt simulate: no config.json" in lines[0]
    res = runner.invoke(app, ["plot", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no run directory" in res.output


def test_plot_functions_take_data():
    edges = np.linspace(-4, 4, 41)
    rng = np.random.default_rng(0)
    hists = np.stack([[np.histogram(rng.normal(size=500), edges)[0] for _ in range(3)]] * 4)
    hists[1, 2] = 0  # an empty histogram is drawn flat, not an error
    fig, axes = plot_ridgeline(edges, hists, [0, 1, 5, 9], labels=["a", "b", "c"], xlabel="x")
    assert len(axes) == 3 and [t.get_text() for t in axes[0].get_yticklabels()][-1] == "9"
    fig, axes = plot_layer_series([0, 1], {"y": np.ones((2, 3))}, labels=["a", "b", "c"])
    assert len(axes) == 1 and len(axes[0].lines) == 3
    fig, axes = plot_spectra(
        [[np.array([2.0, 1.0]), np.array([1.0])]], [0], labels=["a", "b"], bands=[(0.5, 1.5), None]
    )
    assert len(axes) == 2 and len(axes[1].lines) == 0  # one neuron: nothing to correlate


# -- simulate runs ---------------------------------------------------------------------------------


def _invoke(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def _assert_pngs(run_dir, names, output=None):
    for name in names:
        png = run_dir / "figures" / f"{name}.png"
        assert png.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        img = imread(png)
        assert img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 0.05, name
        if output is not None:
            assert str(png) in output, name


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    """A tiny run of the real `umwelt simulate` at T = 0.1 (3 layers, 2 epochs)."""
    out = tmp_path_factory.mktemp("runs") / "sim"
    _invoke("simulate", "--out", str(out), "--dataset", TEACHER, *SIM_TINY, "--quiet")
    return out


def test_simulate_figures_are_the_ones_simulate_draws(sim_run):
    assert {p.stem for p in (sim_run / "figures").glob("*.png")} == set(SIMULATE_FIGURES)
    assert Run.open(sim_run).kind == "simulate"
    with pytest.raises(ConfigError, match="is a simulate run, not a run of umwelt train"):
        train_figures(Run.open(sim_run))


def test_plot_redraws_a_simulate_run(sim_run, tmp_path):
    d = tmp_path / "sim"
    shutil.copytree(sim_run, d, ignore=shutil.ignore_patterns("figures"))
    out = _invoke("plot", str(d))
    assert sorted(out.split()) == sorted(str(d / "figures" / f"{n}.png") for n in SIMULATE_FIGURES)
    _assert_pngs(d, SIMULATE_FIGURES, out)
    assert not list(d.rglob("*.tmp"))


def test_plot_adds_the_hessian_figures_of_a_simulate_run(sim_run, tmp_path):
    d = tmp_path / "sim"
    shutil.copytree(sim_run, d)
    _invoke("hessian", str(d), "--no-figures", *HESSIAN_TINY)
    relu = ["--net", "relu", "--epochs", "2", "--entries", "0"]
    _invoke("hessian", str(d), *relu, "--no-figures", *HESSIAN_TINY)
    shutil.rmtree(d / "figures")
    out = _invoke("plot", str(d))
    hessian = [f"hessian_{n}" for n in HESSIAN_FIGURES if n != "blocks"]  # (no --blocks here)
    _assert_pngs(d, [*SIMULATE_FIGURES, *hessian, "hessian_relu_spectrum"], out)
    assert len(out.split()) == len(SIMULATE_FIGURES) + len(hessian) + 1  # relu: no entries


def test_plot_of_an_infinite_temperature_simulate_run(sim_run, tmp_path):
    d = tmp_path / "inf"
    shutil.copytree(sim_run, d, ignore=shutil.ignore_patterns("figures"))
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "temperature": "inf"}))  # as JSON holds it
    written = make_figures(d)
    assert [p.stem for p in written] == list(SIMULATE_FIGURES)
    _assert_pngs(d, SIMULATE_FIGURES)


@pytest.mark.parametrize(
    "config, needle",
    [
        ({"temperature": 0.1}, "names neither a model nor MLP widths"),
        ([1, 2], "names neither a model nor MLP widths"),
        (None, "unreadable config.json"),
    ],
)
def test_plot_refuses_a_directory_of_neither_kind(tmp_path, config, needle):
    text = "{not json" if config is None else json.dumps(config)
    (tmp_path / "config.json").write_text(text)
    res = runner.invoke(app, ["plot", str(tmp_path)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output
    assert "Traceback" not in res.output and not (tmp_path / "figures").exists()


def test_run_without_metrics_is_refused(sim_run, tmp_path):
    d = tmp_path / "sim"
    shutil.copytree(sim_run, d, ignore=shutil.ignore_patterns("figures", "metrics.jsonl"))
    with pytest.raises(ConfigError, match="simulate run .* has no metrics.jsonl"):
        make_figures(d)
    (d / "metrics.jsonl").write_text("")
    with pytest.raises(ConfigError, match="has no metrics yet"):
        make_figures(d)
    assert not (d / "figures").exists()


def test_simulate_run_with_a_foreign_metrics_file_is_refused(sim_run, tmp_path):
    d = tmp_path / "sim"
    shutil.copytree(sim_run, d, ignore=shutil.ignore_patterns("figures"))
    (d / "metrics.jsonl").write_text(json.dumps({"epoch": 0, "loss": 1.0}) + "\n")
    res = runner.invoke(app, ["plot", str(d)])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [
        f"error: {str(d)!r}: metrics.jsonl has no column 'test_loss'"
    ], res.output
