"""Sizes are bounded before anything is allocated or written (umwelt.memory).

Every command refuses a request whose arrays cannot fit with one line ``error: ... needs about
<size>; the memory limit is <size> (...)`` and exit code 2: no ``MemoryError`` traceback, no
run directory, no ``--out``, no change to a run a Hessian analysis reads. None of these tests
allocates the sizes it names (that is the point); the requests are petabytes or terabytes, or
the limit is set small with ``UMWELT_MEMORY_LIMIT``.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from umwelt import memory
from umwelt.data import CIFAR10_CLASSES, load_dataset
from umwelt.errors import ConfigError, DataError, MemoryBudgetError

runner = CliRunner()
TINY = "random-labels:n=40,dim=4,n_test=10"
REFUSAL = re.compile(
    r"error: .+ needs about [0-9.e+]+ [KMGTPE]?i?B; the memory limit is [0-9.e+]+ [KMGTPE]?i?B "
    r"\((available memory; set UMWELT_MEMORY_LIMIT to change it|UMWELT_MEMORY_LIMIT=\S+)\)"
)


def refused(res, pattern: re.Pattern[str] | str = REFUSAL) -> str:
    """The one line of a refusal: exit 2, nothing on stderr but ``error: ...``, no traceback."""
    lines = res.stderr.splitlines()
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and re.fullmatch(pattern, lines[0]), res.stderr
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit | None)
    return lines[0]


def tree(path: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")
    }


# -- the limit --------------------------------------------------------------------------------


def test_the_limit_comes_from_the_environment_or_the_machine(monkeypatch):
    monkeypatch.setenv(memory.ENV_VAR, "8G")
    assert memory.available_bytes() == 8 * 2**30
    assert memory.memory_limit() == (8 * 2**30, "UMWELT_MEMORY_LIMIT=8G")
    for text, n in [
        ("512M", 2**29),
        ("1.5k", 1536),
        ("2GiB", 2**31),
        ("4096", 4096),
        (" 1T ", 2**40),
    ]:
        monkeypatch.setenv(memory.ENV_VAR, text)
        assert memory.available_bytes() == n, text
    monkeypatch.delenv(memory.ENV_VAR)
    n, source = memory.memory_limit()
    assert n is not None and 0 < n < 2**50 and source.startswith("available memory")


@pytest.mark.parametrize("bad", ["lots", "0", "-1G", "8X", "nan", "1e9", "G"])
def test_a_bad_limit_is_a_config_error_naming_it(monkeypatch, bad):
    monkeypatch.setenv(memory.ENV_VAR, bad)
    with pytest.raises(
        ConfigError, match=rf"^UMWELT_MEMORY_LIMIT must be .* got {re.escape(repr(bad))}$"
    ):
        memory.available_bytes()


def test_a_bad_limit_at_the_command_line(tmp_path):
    res = runner.invoke(app, ["exact"], env={memory.ENV_VAR: "lots"})
    refused(res, r"error: UMWELT_MEMORY_LIMIT must be a positive number of bytes.*got 'lots'")


def test_check_fits_names_both_sizes(monkeypatch):
    monkeypatch.setenv(memory.ENV_VAR, "5G")
    memory.check_fits("a small thing", 5 * 2**30)  # exactly the limit fits
    with pytest.raises(MemoryBudgetError) as e:
        memory.check_fits("a big thing", 12.34 * 2**30)
    assert str(e.value) == (
        "a big thing needs about 12.3 GiB; the memory limit is 5 GiB (UMWELT_MEMORY_LIMIT=5G)"
    )
    assert isinstance(e.value, ConfigError)
    monkeypatch.delenv(memory.ENV_VAR)
    with pytest.raises(MemoryBudgetError, match=r"\(available memory; set UMWELT_MEMORY_LIMIT"):
        memory.check_fits("a huge thing", 2**70)
    assert memory.format_bytes(2**3000) == "2^3000 B"


def test_sizes_are_computed_without_building_anything():
    assert memory.mlp_parameters((64, 100_000_000, 1)) == 6_500_000_000
    params, units = memory.vgg_sizes("vgg12", 1.0, (3, 32, 32))
    assert params == 9_664_704 and units > 3 * 32 * 32
    assert memory.vgg_sizes("vgg11", 100_000, (64,))[0] > 10**16  # no image: CIFAR's shape


# -- every command refuses before it allocates or writes ----------------------------------------


CASES = {
    "simulate-hidden": ["simulate", "--hidden", "100000000"],
    "simulate-dataset": ["simulate", "--dataset", "random-labels:n=1000000000000"],
    "circuits-widths": ["circuits", "--widths", "100000,100000,1"],
    "circuits-samples": ["circuits", "--widths", "3,4,1", "--samples", "1000000000000"],
    "train-mlp": ["train", "--model", "mlp:100000000", "--dataset", "digits"],
    "train-vgg": ["train", "--model", "vgg11", "--width", "100000", "--dataset", "digits"],
    "train-dataset": ["train", "--model", "mlp:8", "--dataset", "teacher:n=1000000000000"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_command_too_large_is_refused_before_writing(case, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, [*CASES[case], "--out", str(out)])
    refused(res)
    assert not out.exists()


@pytest.mark.parametrize("args", [["--samples", "1000000000000"], ["--widths", "100000,100000,1"]])
def test_exact_too_large_is_refused(args):
    line = refused(runner.invoke(app, ["exact", "--widths", "3,4,1", *args]))
    assert "samples" in line or "100000-100000-1" in line


def test_exact_names_an_enumeration_too_large_to_print():
    res = runner.invoke(app, ["exact", "--widths", "3,20000,1"])
    line = refused(res, r"error: exact enumeration needs 2\^20000 ≈ 3\.98e6020 gate .*")
    assert "limit of 4194304" in line


def test_a_synthetic_dataset_is_refused_before_it_is_drawn():
    with pytest.raises(MemoryBudgetError, match=r"^the dataset random-labels \(n=1000000000000, "):
        load_dataset("random-labels:n=1000000000000")
    with pytest.raises(MemoryBudgetError, match=r"^the dataset hidden-manifold \(.*D=1000000000"):
        load_dataset("hidden-manifold:n=10,D=1000000000,dim=1000")


def test_a_limit_refuses_the_default_run_and_a_modest_one_runs_it(tmp_path):
    out = tmp_path / "small"
    res = runner.invoke(app, ["simulate", "--out", str(out)], env={memory.ENV_VAR: "1M"})
    assert "(UMWELT_MEMORY_LIMIT=1M)" in refused(res)
    assert not out.exists()
    args = ["simulate", "--epochs", "1", "--hidden", "4", "--samples", "2", "--dataset", TINY]
    res = runner.invoke(app, [*args, "--quiet", "--out", str(out)], env={memory.ENV_VAR: "2G"})
    assert res.exit_code == 0, res.output
    assert (out / "summary.json").is_file()


# -- the Hessian of a run: refused before the first product, the run untouched ------------------


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("memory") / "run"
    args = ["simulate", "--epochs", "1", "--hidden", "4", "--samples", "2", "--dataset", TINY]
    res = runner.invoke(app, [*args, "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize(
    "args, part",
    [
        (["--grid-points", "1000000000001"], "a density grid of 1,000,000,000,001 points"),
        (["--bootstrap", "1000000000"], "1,000,000,000 bootstrap resamples"),
    ],
)
def test_a_hessian_analysis_too_large_leaves_the_run_unchanged(sim_run, args, part):
    before = tree(sim_run)
    res = runner.invoke(app, ["hessian", str(sim_run), *args, "--quiet"])
    assert f"mostly {part})" in refused(res)
    assert tree(sim_run) == before and not (sim_run / "hessian").exists()


def test_a_small_limit_refuses_a_hessian_analysis(sim_run):
    before = tree(sim_run)
    res = runner.invoke(app, ["hessian", str(sim_run), "--quiet"], env={memory.ENV_VAR: "8M"})
    line = refused(res)
    assert "mostly a density grid of 801 points)" in line and "(UMWELT_MEMORY_LIMIT=8M)" in line
    assert tree(sim_run) == before


# -- CIFAR-10: a batch file larger than one can be is not read --------------------------------


def test_a_huge_batch_file_is_refused_before_reading(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    meta = {
        b"label_names": [c.encode() for c in CIFAR10_CLASSES],
        b"num_cases_per_batch": 10,
        b"num_vis": 3072,
    }
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    for name in [f"data_batch_{k}" for k in range(2, 6)] + ["test_batch"]:
        (root / name).write_bytes(b"")
    with open(root / "data_batch_1", "wb") as f:
        f.truncate(64 * 2**30)  # sparse: no disk, and never read
    with pytest.raises(DataError, match=r"data_batch_1' is 68719476736 bytes, more than a CIFAR"):
        load_dataset(str(root))
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["train", "--model", "mlp:4", "--dataset", str(root), "--quiet", "--out", str(out)]
    )
    refused(res, r"error: .*data_batch_1' is 68719476736 bytes, more than a CIFAR-10 file .*")
    assert not out.exists()
