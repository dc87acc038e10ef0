"""The benchmarks run in their quick configuration and report their ratios."""

import pytest
from typer.testing import CliRunner

from sim.cli import app


@pytest.mark.slow
@pytest.mark.parametrize("which", ["enumeration", "training"])
def test_quick_benchmark_runs(which):
    res = CliRunner().invoke(app, ["bench", which, "--quick"])
    assert res.exit_code == 0, res.output
    assert ("speed-up" if which == "enumeration" else "sample/relu") in res.output


def test_unknown_benchmark_is_refused():
    res = CliRunner().invoke(app, ["bench", "warp-drive"])
    assert res.exit_code == 2 and "warp-drive" in res.output


@pytest.mark.usefixtures("one_torch_thread")
def test_quick_observation_times_its_parts_and_counts_its_products():
    from sim.benchmarks.hessian import PARTS, QUICK_SETTINGS, observation

    r = observation(quick=True)
    parts = r["parts_s"]
    assert list(parts) == [key for key, _ in PARTS]
    assert all(s >= 0 for s in parts.values())
    assert sum(parts.values()) == pytest.approx(r["total_s"], rel=1e-9)
    # the parts of the epoch's analysis against sim.hessian's own clock of it
    inside = sum(parts[k] for k in ("density", "checks", "entries"))
    assert inside == pytest.approx(r["analysis_wall_s"], rel=0.05, abs=0.02)
    # the products each part makes: k × n_v for the density, k steps for the extremes when
    # the SLQ's Ritz values have not converged (4 steps: they have not); none outside the
    # stages that make them
    s = r["settings"]
    hvps = r["hvps"]
    assert r["row"]["extremes_from"] == "slq+lanczos"
    assert hvps["extremes"] == s["extreme_steps"] == QUICK_SETTINGS["extreme_steps"]
    assert hvps["slq"] == s["lanczos_steps"] * s["start_vectors"] == 8
    assert hvps["entries"] == 0  # the pairs a circuit joins are known without a product
    # the diagonal entries, then the trace test: 16 probes of its own, as the SLQ's one
    # start vector gives its trace no error bar
    assert hvps["checks"] == s["hinge_coords"] + 16
    assert hvps["operator"] == hvps["density"] == hvps["roundoff"] == 0
    assert r["n_hvp"] == sum(hvps.values()) > 0
    assert sum(r["hvp_s"].values()) <= r["total_s"]
    assert r["s_per_hvp"] == pytest.approx(sum(r["hvp_s"].values()) / r["n_hvp"])
    for key in hvps:
        assert r["hvp_s"][key] <= parts[key] + 1e-9
    assert r["per_example"]["products"] > 0 and r["row"]["n_entries"] > 0
    assert r["n_examples"] == 8 and "synthetic" in r["data"]


@pytest.mark.slow
def test_quick_hessian_benchmark_reports_the_observation():
    res = CliRunner().invoke(app, ["bench", "hessian", "--quick"])
    assert res.exit_code == 0, res.output
    assert "hvp/grad" in res.output and "One Hessian observation" in res.output
    assert "gated/grad" in res.output and "db/gated" in res.output
    assert "entries: columns, bootstrap" in res.output and "full-data HVPs:" in res.output


@pytest.mark.usefixtures("one_torch_thread")
def test_quick_kernel_benchmark_times_every_convolution_of_vgg12_in_both_layouts():
    res = CliRunner().invoke(app, ["bench", "kernels", "--quick"])
    assert res.exit_code == 0, res.output
    from sim.benchmarks.kernels import conv_blocks

    r = conv_blocks(quick=True)
    # vgg12 at width 1/16 on 32×32 images: ten convolutions, the side halved after each pool
    shapes = [(3, 4, 32), (4, 4, 32), (4, 8, 16), (8, 8, 16), (8, 16, 8)]
    shapes += [(16, 16, 8), (16, 32, 4), (32, 32, 4), (32, 32, 2), (32, 32, 2)]
    for layout in ("nchw", "channels-last"):
        rows = [row for row in r["rows"] if row["layout"] == layout]
        assert [row["shape"] for row in rows] == shapes
        total = next(t for t in r["totals"] if t["layout"] == layout)
        assert total["singles_s"] == pytest.approx(sum(row["singles_s"] for row in rows))
        assert total["speedup"] == pytest.approx(total["singles_s"] / total["block_s"])
        for row in rows:  # the same arithmetic on both sides: GFLOP/s in the time ratio
            ratio = row["block_gflops"] / row["singles_gflops"]
            assert ratio == pytest.approx(row["speedup"]) and row["speedup"] > 0
    assert "every convolution" in res.output and r["k"] == 4
