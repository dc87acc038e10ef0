"""umwelt.plotting: the public surface is every public function of its figure modules, and each
function draws a figure of the expected axes from tiny synthetic data (without saving it)."""

import importlib
import inspect
import pkgutil
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import umwelt.plotting as P

E = 4  # epochs of the synthetic series
EPOCHS = list(range(E))


def _figure_modules():
    """The submodules that hold figures (``_common`` holds their shared helpers)."""
    names = [m.name for m in pkgutil.iter_modules(P.__path__)]
    assert "_common" in names
    return [importlib.import_module(f"umwelt.plotting.{n}") for n in names if n != "_common"]


def _public_functions(module) -> dict:
    return {
        name: f
        for name, f in inspect.getmembers(module, inspect.isfunction)
        if f.__module__ == module.__name__ and not name.startswith("_")
    }


def test_every_public_figure_function_is_exported():
    defined = {}
    for module in _figure_modules():
        defined.update(_public_functions(module))
    exported = {
        name: obj
        for name, obj in vars(P).items()
        if not name.startswith("_") and inspect.isfunction(obj)
    }
    assert set(defined) == set(exported)
    assert all(exported[name] is f for name, f in defined.items())
    assert all(name.startswith("plot_") for name in exported)
    assert not hasattr(P, "__all__")  # the explicit re-exports are the surface
    common = importlib.import_module("umwelt.plotting._common")
    assert not [n for n in _public_functions(common) if n.startswith("plot_")]


def test_import_umwelt_loads_neither_matplotlib_nor_torch():
    code = (
        "import sys, umwelt; assert 'matplotlib' not in sys.modules, 'matplotlib';"
        " assert 'torch' not in sys.modules, 'torch';"
        " import umwelt.plotting; assert 'matplotlib.pyplot' not in sys.modules, 'pyplot';"
        " assert 'torch' not in sys.modules, 'torch by plotting'"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def _check(result, n_axes: int, shape: tuple[int, ...] | None = None):
    fig, axes = result
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n_axes  # colour bars count
    if shape is not None:
        assert np.shape(axes) == shape
    plt.close(fig)


def test_training_figures():
    rng = np.random.default_rng(0)
    series = {"train": rng.random(E), "test": np.r_[0.0, rng.random(E - 1)]}
    _check(P.plot_learning_curves(EPOCHS, {"a": series}, {"a": series}, title="t"), 2, (2,))
    fig = Figure()
    given = fig.subplots(1, 2)
    drawn, axes = P.plot_learning_curves(EPOCHS, {"a": series}, {"a": series}, ax=given)
    assert drawn is fig and list(axes) == list(given)
    plt.close(fig)
    phases = {"a": ["undetermined"] * (E - 2) + ["plasticity", "converged"], "b": [None] * E}
    fig, axes = P.plot_learning_curves(EPOCHS, {"a": series}, {"a": series}, phases=phases)
    assert len(axes) == 3 and [t.get_text() for t in axes[2].get_yticklabels()] == ["a", "b"]
    legend = [t.get_text() for t in axes[2].get_legend().get_texts()]
    assert legend == ["plasticity", "converged", "undetermined"]  # the phases seen, in order
    n_bands = sum(p is not None for v in phases.values() for p in v)
    assert len(axes[2].patches) == n_bands  # one band per labelled epoch, none for None
    plt.close(fig)
    _check(P.plot_gate_statistics(EPOCHS, rng.random((E, 2)), rng.random((E, 2))), 2, (2,))
    _check(P.plot_order_parameter(EPOCHS, {"loss": series["test"], "η‖∇R‖²": series["train"]}), 1)
    edges = np.linspace(-3, 3, 13)
    hists = rng.integers(0, 9, size=(E, 5, 12))
    _check(P.plot_ridgeline(edges, hists, EPOCHS, labels=list("abcde"), xlabel="x"), 8, (5,))
    panels = {"y": rng.random((E, 3)), "z": np.full((E, 3), np.nan)}
    _check(P.plot_layer_series(EPOCHS, panels, labels=list("abc"), reference={"y": 0.5}), 2, (2,))
    spectra = [[np.sort(rng.random(4))[::-1], np.ones(1)] for _ in range(E)]
    _check(P.plot_spectra(spectra, EPOCHS, labels=["a", "b"], bands=[(0.1, 0.9), None]), 2, (2,))


def test_circuit_figures():
    rng = np.random.default_rng(1)
    v = np.r_[np.zeros(5), rng.normal(size=50)]
    panels = {"ψ": {"trained": v, "init": rng.normal(size=40)}, "Ω": {"trained": v}}
    _check(P.plot_circuit_histograms(panels, notes={"ψ": {"trained": "p = 0.5"}}), 2, (2,))
    D, W = 3, 2
    moments = [{"1": rng.random((D, W)) + 0.1} for _ in range(4)]
    fig_axes = P.plot_assembly_moments([1, 2, 3], [4, 8], *moments, references={"1": np.ones(D)})
    _check(fig_axes, 2, (2, 1))


def test_hessian_figures():
    rng = np.random.default_rng(2)
    grid = np.linspace(-20, 20, 41)
    dens = np.exp(-np.abs(grid)[None] / np.arange(1, E + 1)[:, None])
    series = {"extremes": {"max": (rng.random(E), None), "min": (-rng.random(E), rng.random(E))}}
    spectrum = P.plot_hessian_spectrum(grid, dens, EPOCHS, c=0.5, lo=dens, hi=dens, series=series)
    _check(spectrum, 2, (2,))
    edges = np.sinh(np.linspace(-4, 4, 21))
    hists = rng.integers(0, 20, size=(E, 20))
    corr = {"first": np.eye(3), "last": np.eye(3)}
    _check(P.plot_hessian_entries(edges, hists, EPOCHS, corr), 4, (3,))  # + the colour bar
    means = P.plot_hessian_means(edges, hists, EPOCHS, rng.random(E), {"n_corr": rng.random(E)})
    _check(means, 3, (3,))


@pytest.mark.parametrize("name", ["plot_ridgeline", "plot_hessian_entries"])
def test_ridgelines_put_the_earliest_epoch_at_the_bottom(name):
    edges = np.linspace(-3, 3, 13)
    hists = np.ones((E, 1, 12)) if name == "plot_ridgeline" else np.ones((E, 12))
    kw = {"labels": ["a"], "xlabel": "x"} if name == "plot_ridgeline" else {"corr": {}}
    fig, axes = getattr(P, name)(edges, hists, [0, 2, 5, 9], **kw)
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["0", "2", "5", "9"]
    plt.close(fig)


def test_order_parameter_in_the_papers_layout_draws_the_ratio_it_is_given():
    e = np.arange(301.0)
    loss, op = 0.7 * np.exp(-e / 40), 0.07 * np.exp(-e / 40)
    series = {"R": loss, "op": op}
    fig, axes = P.plot_order_parameter(e, series, ratio=("op", "R"), split_at=150)
    top, lin, bottom = axes
    assert top.get_yscale() == "log" and lin.get_yscale() == "linear"
    assert top.lines[0].get_xdata().max() == 150 and lin.lines[0].get_xdata().min() == 150
    np.testing.assert_allclose(bottom.lines[0].get_ydata(), 0.1)  # op / R, every epoch
    _check((fig, axes), 3)
    _check(P.plot_order_parameter(e[:100], series and {"R": loss[:100]}, split_at=150), 1)
