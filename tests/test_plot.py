"""`umwelt plot RUN`: every figure of a training run is written and is not blank."""

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from sim.cli import app
from sim.plot import FIGURES, make_figures
from sim.train import TrainConfig, run
from umwelt.plotting import plot_layer_series, plot_ridgeline, plot_spectra

runner = CliRunner()


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
    assert len(lines) == 1 and "not a train run" in lines[0]
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
