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
