"""`umwelt exact`: the exact law of a tiny net beside Monte Carlo, and its refusals."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import umwelt.exact
from sim.cli import app
from sim.exact import ExactConfig, run
from umwelt.exact import exact_enumeration
from umwelt.network import LayeredNetwork

runner = CliRunner()


def test_json_matches_the_library_and_monte_carlo_agrees():
    res = runner.invoke(
        app,
        [
            "exact",
            "--widths",
            "3,4,3,1",
            "--temperature",
            "0.5",
            "--inputs",
            "3",
            "--samples",
            "4000",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    assert r["n_configurations"] == 2**7
    net = LayeredNetwork.he_normal((3, 4, 3, 1), seed=0)
    x = np.random.default_rng(1).normal(size=(3, 3))
    ex = exact_enumeration(net, x, 0.5, backend="numpy")
    np.testing.assert_allclose(r["mean"], ex.mean, rtol=1e-10)
    np.testing.assert_allclose(r["var"], ex.var, rtol=1e-10)
    np.testing.assert_allclose(r["relu_output"], net.relu_forward(x), rtol=0)
    mc = r["monte_carlo"]
    assert mc["no_variation"] == [None] * 3  # at T = 0.5 every input's draws vary
    assert max(mc["z_mean"]) < 4 and max(mc["max_z_marginals_per_layer"]) < 4.5


ISSUE_13 = ["--widths", "5,5,1", "--temperature", "0.1", "--samples", "2000", "--seed", "5"]


def test_no_variation_is_a_null_z_with_the_rule_of_three():
    """Issue 13: inputs 1 and 3 drew one configuration 2000 times. Their SEs are exactly 0, their
    z-scores null (they were 3.8e12, 2.0e13, 4.9e30 and 4.6e31), and the rule of three is set
    against the exact probability that a draw's configuration differs."""
    res = runner.invoke(app, ["exact", *ISSUE_13, "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    mc = r["monte_carlo"]
    S = 2000
    assert mc["rule_of_three"] == 3 / S
    for b in (1, 3):
        assert mc["mean_se"][b] == 0.0 and mc["var"][b] == 0.0 and mc["var_se"][b] == 0.0
        assert mc["z_mean"][b] is None and mc["z_var"][b] is None
        nv = mc["no_variation"][b]
        assert nv["reason"] == f"no variation seen in {S} draws" and nv["upper_bound"] == 3 / S
        assert nv["event"] == "a draw's gate configuration differs from the one seen"
        # one hidden layer: its gates are independent given x, so μ(h⁰ | x) = Π_i P(h_i = h⁰_i);
        # h⁰ is the most probable configuration (every exact marginal is within 0.01 of 0 or 1)
        p = np.array(r["marginals"][0][b])
        assert np.all(np.abs(p - 0.5) > 0.49)
        q = 1 - np.prod(np.maximum(p, 1 - p))
        np.testing.assert_allclose(nv["exact_probability"], q, rtol=1e-9)
        np.testing.assert_allclose(nv["exact_chance_all_agree"], (1 - q) ** S, rtol=1e-9)
        assert nv["disagrees"] is False  # q ≈ 8e-5 and 2e-4, below 3/S = 1.5e-3
    for b in (0, 2):  # these varied: z-scores are measured, nothing is left unseen
        assert mc["no_variation"][b] is None and mc["mean_se"][b] > 0
        assert 0 <= mc["z_mean"][b] < 4
    gates = mc["constant_gates_per_layer"][0]
    assert gates["gates"] > 0 and gates["over_rule_of_three"] == 0
    assert 0 < gates["max_exact_flip_probability"] < 3 / S
    assert mc["max_z_marginals_per_layer"][0] < 4  # was inf: gates that never flipped


def test_no_variation_table_runs():
    res = runner.invoke(app, ["exact", *ISSUE_13])
    assert res.exit_code == 0, res.output
    assert "32 gate configurations" in res.output


def test_a_constant_sampler_that_ignores_the_law_is_a_disagreement(monkeypatch):
    """A sampler that draws the ReLU gates whatever T is shows no variation; at T = 1 the exact
    law puts far more than 3/S on other configurations, so every input is flagged."""
    real = umwelt.exact.monte_carlo
    monkeypatch.setattr(
        umwelt.exact, "monte_carlo", lambda net, x, T, S, *, seed: real(net, x, 0.0, S, seed=seed)
    )
    r = run(ExactConfig(widths=(3, 4, 3, 1), temperature=1.0, samples=100))
    mc = r["monte_carlo"]
    assert all(math.isnan(z) for z in mc["z_mean"] + mc["z_var"])
    for nv in mc["no_variation"]:
        assert nv["disagrees"] is True and nv["exact_probability"] > 0.5
        assert nv["exact_chance_all_agree"] < 1e-20
    assert all(g["over_rule_of_three"] > 0 for g in mc["constant_gates_per_layer"])
    assert all(math.isnan(z) for z in mc["max_z_marginals_per_layer"])


def test_output_constant_while_gates_flip_checks_a_constant_layer():
    """Seed 62, input 3: layer 1 is shut in every draw, so layer 2 flips fair coins (z_2 = 0) and
    f = 0; the unseen event is layer 1 opening, P = 1 − Π_i (1 − P(h_1i = 1 | x))."""
    r = run(ExactConfig(widths=(3, 4, 3, 1), temperature=0.3, samples=200, seed=62))
    mc = r["monte_carlo"]
    nv = mc["no_variation"][3]
    assert mc["mean"][3] == 0.0 and mc["mean_se"][3] == 0.0 and math.isnan(mc["z_mean"][3])
    assert nv["event"] == "a draw's layer-1 gates differ from the ones seen"
    q = 1 - np.prod(1 - np.array(r["marginals"][0][3]))
    np.testing.assert_allclose(nv["exact_probability"], q, rtol=1e-9)
    assert q < 3 / 200 and nv["disagrees"] is False


def test_table_output_runs():
    res = runner.invoke(app, ["exact", "--widths", "2,2,1", "--samples", "100"])
    assert res.exit_code == 0, res.output
    assert "4 gate configurations" in res.output and "layer 1" in res.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--widths", "8,8,8,8,1"],
            "2^24 = 16777216 gate configurations per input, over the limit of 4194304",
        ),
        (["--widths", "3,,1"], "3,,1"),
        (["--temperature", "-2"], "-2"),
        (["--samples", "1"], "got 1"),
        (["--inputs", "0"], "inputs"),
    ],
)
def test_bad_input_is_one_clear_line(args, needle):
    res = runner.invoke(app, ["exact", *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output
