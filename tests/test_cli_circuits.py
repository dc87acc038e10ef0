"""`umwelt circuits`: the identities verified on the spot, the symmetry report, the figures,
and one clear line with exit code 2 for every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from typer.testing import CliRunner

from sim.circuits import graph_to_json
from sim.cli import app
from umwelt import LayeredNetwork
from umwelt.circuits import circuit_graph
from umwelt.nn import build_mlp

runner = CliRunner()
TOL = 1e-10
SYM_KEYS = {"mean_over_std", "skewness", "frac_positive", "sym_test_pvalue"}


def invoke(*args: str) -> dict:
    res = runner.invoke(app, ["circuits", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def assert_identities(r: dict, *, enumerated: bool) -> None:
    assert r["enumerated"] is enumerated
    for key in ("sum_rel_error", "grad_rel_error", "hessian_rel_error"):
        assert r[key] is not None and 0 <= r[key] <= TOL, (key, r[key])
    assert (
        r["hessian_entries_checked"] > 0
        and r["grad_entries_checked"] == r["inputs"] * r["n_parameters"]
    )
    assert set(r["symmetry"]) == {"psi", "omega1", "omega2"}
    for s in r["symmetry"].values():
        assert SYM_KEYS <= set(s)
        assert 0 <= s["sym_test_pvalue"] <= 1 and 0 <= s["frac_positive"] <= 1


def test_mlp_enumerated():
    r = invoke("--widths", "16,32,32,1", "--samples", "2000")
    assert r["n_circuits"] == 16 * 32 * 32 and r["net"]["kind"] == "mlp"
    assert_identities(r, enumerated=True)
    np.testing.assert_allclose(r["f_circuits"], r["f_autograd"], rtol=1e-12)
    net = LayeredNetwork.he_normal((16, 32, 32, 1), seed=0)  # the documented seeds
    x = np.random.default_rng(1).normal(size=(4, 16))
    np.testing.assert_allclose(r["f_autograd"], net.relu_forward(x), rtol=1e-12)


def test_mlp_beyond_the_budget_by_dynamic_programming_with_sampled_gates():
    args = ("--widths", "6,5,4,3,1", "--max-circuits", "50", "--temperature", "0.5")
    r = invoke(*args, "--inputs", "2", "--samples", "500", "--checks", "16")
    assert r["n_circuits"] == 360 and "dynamic programming" in r["method"]
    assert_identities(r, enumerated=False)


@pytest.mark.parametrize("pool", ["select", "gate"])
@pytest.mark.parametrize("budget", ["4194304", "20"])
def test_tiny_conv_net(pool, budget):
    r = invoke("--model", "tiny-conv", "--pool", pool, "--max-circuits", budget, "--samples", "600")
    assert r["net"]["kind"] == "conv" and r["pool"] == pool
    assert_identities(r, enumerated=budget != "20")
    if pool == "gate":  # the set of circuits does not depend on the input then
        assert len(set(r["n_circuits_per_input"])) == 1


@pytest.mark.slow
def test_vgg_at_width_one_thirty_second():
    r = invoke("--model", "vgg11", "--width", "1/32", "--inputs", "1", "--samples", "500")
    assert r["n_circuits"] > 10**16 and r["depth"] == 11
    assert_identities(r, enumerated=False)


def test_table_figures_and_one_circuit(tmp_path):
    out = tmp_path / "figs"
    res = runner.invoke(
        app,
        [
            "circuits",
            "--widths",
            "5,4,3,1",
            "--samples",
            "800",
            "--circuit",
            "7",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "identities" in res.output and "circuit symmetry" in res.output
    assert "circuit 7: x[0] → fc1[2] → fc2[1] → f" in res.output  # 7 = (0, 2, 1) in mixed radix
    png = out / "circuit_histograms.png"
    img = imread(png)
    assert img.ndim == 3 and img.shape[0] > 300 and img.std() > 0.05
    r = json.loads((out / "circuits.json").read_text())
    assert r["figures"] == [str(png)] and r["circuit"]["path"] == [0, 2, 1]


@pytest.mark.slow
def test_assembly_moments_figure(tmp_path):
    r = invoke("--widths", "4,4,1", "--samples", "200", "--moments", "--out", str(tmp_path))
    m = r["assembly_moments"]
    assert set(m["second"]) == {"f", "grad", "hess"} and len(m["depths"]) == 6
    img = imread(tmp_path / "assembly_moments.png")
    assert img.std() > 0.05


def test_a_circuit_graph_file(tmp_path):
    net = LayeredNetwork.he_normal((3, 4, 2, 1), seed=2)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(graph_to_json(circuit_graph(net))))
    r = invoke("--graph", str(path), "--samples", "300", "--x", "0.5,-1,2")
    assert r["n_circuits"] == 24 and r["inputs"] == 1 and r["input_source"] == "given"
    assert r["f_autograd"][0] == pytest.approx(float(net.relu_forward(np.array([[0.5, -1, 2]]))[0]))
    assert_identities(r, enumerated=True)


@pytest.fixture
def simulate_run(tmp_path):
    """A run directory as `umwelt simulate` writes it (config.json, checkpoints/*.pt)."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    widths = [64, 4, 3, 1]
    cfg = {"widths": widths, "temperature": 0.1, "seed": 0, "dtype": "float32", "dataset": "digits"}
    (run / "config.json").write_text(json.dumps(cfg))
    init = build_mlp(widths, temperature=0.1, seed=0)
    torch.save(init.state_dict(), run / "checkpoints" / "init.pt")
    trained = build_mlp(widths, temperature=0.1, seed=1)  # stands in for trained weights
    torch.save(trained.state_dict(), run / "checkpoints" / "finite_T.pt")
    torch.save(trained.state_dict(), run / "checkpoints" / "relu.pt")
    return run


def test_simulate_checkpoint_against_its_initialization(simulate_run, tmp_path):
    r = invoke("--checkpoint", str(simulate_run), "--samples", "500", "--out", str(tmp_path))
    assert r["net"]["which"] == "finite_T" and r["n_circuits"] == 64 * 4 * 3
    assert r["input_source"].startswith("training set")
    assert_identities(r, enumerated=True)
    assert set(r["symmetry_init"]) == {"psi", "omega1", "omega2"}
    assert imread(tmp_path / "circuit_histograms.png").std() > 0.05
    r0 = invoke("--checkpoint", str(simulate_run), "--which", "init", "--samples", "500")
    assert "symmetry_init" not in r0 and r0["f_autograd"] != r["f_autograd"]


@pytest.fixture
def bad_graph(tmp_path):
    path = tmp_path / "skip.json"
    edges = [[["x", 0], [1, 0], 1.0], [[1, 0], ["f", 0], 1.0], [["x", 0], ["f", 0], 2.0]]
    path.write_text(json.dumps({"edges": edges}))
    return path


@pytest.fixture
def mismatched_run(simulate_run):
    cfg = json.loads((simulate_run / "config.json").read_text())
    cfg["widths"] = [64, 5, 3, 1]  # the checkpoints have 4 units in layer 1
    (simulate_run / "config.json").write_text(json.dumps(cfg))
    return simulate_run


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--widths", "16,32,32,1", "--enumerate", "--max-circuits", "1000"], "memory budget"),
        (["--graph", "{bad_graph}"], "not layered"),
        (["--widths", "4,3,1", "--circuit", "12"], "circuit index 12 is out of range [0, 12)"),
        (["--model", "tiny-conv", "--circuit", "-1"], "out of range"),
        (["--widths", "4,3,1", "--x", "1,2,3"], "the input has 3 values"),
        (["--model", "tiny-conv", "--x", "1,2,3"], "the input has 3 values"),
        (["--checkpoint", "{mismatched_run}"], "does not fit"),
        (["--checkpoint", "{simulate_run}", "--which", "best"], "best"),
        (["--checkpoint", "{tmp_path}"], "no config.json"),
        (["--widths", "4,3,1", "--model", "tiny-conv"], "give one net"),
        (["--model", "vgg99"], "vgg99"),
        (["--model", "vgg11", "--width", "1/0"], "1/0"),
        (["--widths", "4,3,2"], "n_L = 1"),
        (["--samples", "1"], "samples"),
        (["--temperature", "-1"], "-1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, request, tmp_path):
    fixtures = {"bad_graph", "mismatched_run", "simulate_run", "tmp_path"}
    args = [
        str(request.getfixturevalue(a[1:-1])) if a[1:-1] in fixtures else a
        for a in args  # "{name}" is a fixture
    ]
    res = runner.invoke(app, ["circuits", *args, "--json"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert needle in lines[0]


def test_quick_benchmark_reports_its_ratios():
    res = runner.invoke(app, ["bench", "circuits", "--quick"])
    assert res.exit_code == 0, res.output
    assert "speed-up numba enumeration / networkx" in res.output
    assert "per thread" in res.output and "uniform samples/s" in res.output


def _train_run(tmp_path, model: str, input_shape, dataset: str, width: float = 1.0):
    """A run directory as `umwelt train` writes it (config.json, model_epoch_XXXX.pt)."""
    from umwelt.nn import build_model

    run = tmp_path / "train"
    (run / "checkpoints").mkdir(parents=True)
    cfg = {"model": model, "width": width, "input_shape": list(input_shape), "seed": 0}
    (run / "config.json").write_text(json.dumps({**cfg, "dataset": dataset}))
    for epoch, seed in ((0, 0), (3, 1)):
        m = build_model(
            model, input_shape=tuple(input_shape), temperature=0.0, width=width, seed=seed
        )
        torch.save(m.state_dict(), run / "checkpoints" / f"model_epoch_{epoch:04d}.pt")
    return run


def test_train_run_checkpoint_of_an_mlp(tmp_path):
    run = _train_run(tmp_path, "mlp:4,3", (2, 3), "teacher:n=20,dim=6")
    r = invoke("--checkpoint", str(run), "--which", "last", "--samples", "300")
    assert r["net"]["file"] == "model_epoch_0003.pt" and r["n_circuits"] == 6 * 4 * 3
    assert r["input_source"].startswith("training set") and "symmetry_init" in r
    assert_identities(r, enumerated=True)


@pytest.mark.slow
def test_train_run_checkpoint_of_a_vgg_whose_data_is_gone(tmp_path):
    run = _train_run(tmp_path, "vgg11", (3, 32, 32), str(tmp_path / "no-cifar"), width=1 / 32)
    r = invoke("--checkpoint", str(run), "--which", "3", "--inputs", "1", "--samples", "300")
    assert r["net"]["kind"] == "conv" and r["input_source"] == "standard normal"
    assert_identities(r, enumerated=False)
