"""sim.api: every command as a Python function, results read back through sim.runs."""

import math

import pytest

from sim import api
from sim.runs import HessianSettings, Run
from umwelt.errors import ConfigError

DATA = "teacher:n=40,dim=5,n_test=10"
TINY_HESSIAN = HessianSettings(
    lanczos_steps=4, start_vectors=2, extreme_steps=4, entries=6, bootstrap=20, grid_points=31
)


def test_finite_t_against_relu_across_temperatures(tmp_path):
    """The README's exploratory loop: no CLI, no file parsing by hand."""
    seen = {}
    for T in (0.0, 0.5):
        out = tmp_path / f"T{T:g}"
        res = api.simulate(temperature=T, hidden=(4,), epochs=1, dataset=DATA, samples=2, out=out)
        run = Run.open(res.run_dir)
        last = run.metrics()[-1]
        seen[T] = (last["test_acc"], last["relu_test_acc"], run.summary()["mc_test_acc_se"])
        assert run.config.temperature == T and run.path == out
    acc0, relu0, se0 = seen[0.0]
    assert acc0 == relu0 and se0 == 0.0  # at T = 0 the two nets are one computation
    assert 0.0 <= seen[0.5][0] <= 1.0 and math.isfinite(seen[0.5][2])


def test_train_with_hessian_then_hessian_and_plot(tmp_path):
    out = tmp_path / "train"
    res = api.train(
        model="mlp:4", dataset=DATA, epochs=1, batch_size=8, hessian_at=(1,),
        hessian=TINY_HESSIAN, out=out, figures=False,
    )  # fmt: skip
    run = Run.open(res.run_dir)
    assert [r["epoch"] for r in run.hessian_rows()] == [1]
    rows = api.hessian(out, epochs=(0,), **TINY_HESSIAN.to_json())
    assert [r["epoch"] for r in rows] == [0] and len(Run.open(out).hessian_rows()) == 2
    names = {p.name for p in api.plot(out)}
    assert {"learning_curves.png", "hessian_spectrum.png"} <= names
    again = api.resume(out, figures=False)
    assert again.metrics == res.metrics  # nothing left to train


def test_exact_and_circuits():
    r = api.exact(widths=(3, 2, 1), temperature=0.5, samples=200)
    assert r["n_configurations"] == 2**2 and r["widths"] == [3, 2, 1]  # 2 gates: 4 configs
    c = api.circuits(widths=(3, 2, 1), samples=50, checks=4)
    assert c["n_circuits"] == 3 * 2  # one path per (input, hidden unit)


def test_bad_options_raise_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="temperature"):
        api.simulate(temperature=-1.0, out=tmp_path / "never")
    with pytest.raises(TypeError):
        api.simulate(temprature=0.1)  # a misspelt option is not silently ignored
    assert not (tmp_path / "never").exists()
