"""`umwelt exact`: the exact law of a tiny net beside Monte Carlo, and its refusals."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
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
    assert max(mc["z_mean"]) < 4 and max(mc["max_z_marginals_per_layer"]) < 4.5


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
