"""The CLI's edge: option defaults are the Configs' fields, text is parsed into typed values with
one clear line per mistake, ``validated()`` is pure and refuses text, every command validates
once and checks the filesystem once, before anything is written."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sim import cli
from sim.circuits import CircuitsConfig
from sim.exact import ExactConfig
from sim.hessian import HessianConfig
from sim.reproduce import ReproduceConfig
from sim.runs import SimulateConfig, TrainConfig
from sim.sweep import SweepConfig
from umwelt.errors import ConfigError

runner = CliRunner()
DATA = "teacher:n=40,dim=5,n_test=10"
COMMANDS = {
    "simulate": SimulateConfig,
    "exact": ExactConfig,
    "circuits": CircuitsConfig,
    "hessian": HessianConfig,
    "sweep": SweepConfig,
    "reproduce": ReproduceConfig,
}


def _params(command: str):
    group = typer.main.get_command(cli.app)
    return group.commands[command].params


# -- defaults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_defaults_to_its_config_field(command):
    config = COMMANDS[command]
    names = {f.name for f in dataclasses.fields(config)}
    seen = [p for p in _params(command) if p.name in names]
    assert len(seen) >= 5
    for p in seen:
        assert p.default == cli.default(config, p.name), p.name


def test_train_options_are_unset_and_their_help_shows_the_field():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    shown = 0
    for p in _params("train"):
        if p.name not in names:
            continue
        assert p.default is None, p.name  # --resume compares only what was given
        if p.help.endswith(")") and "(default: " in p.help and p.name != "gain":
            value = p.help.rpartition("(default: ")[2][:-1]
            if p.name != "observe_at":
                assert value == str(cli.default(TrainConfig, p.name)), p.name
                shown += 1
    assert shown >= 10


def test_default_renders_tuples_and_fractions_as_option_text():
    assert cli.default(ExactConfig, "widths") == "3,4,3,1"
    assert cli.default(CircuitsConfig, "width") == "1/32"
    assert cli.default(HessianConfig, "entry_columns") == 40
    assert cli.with_default("Epochs.", TrainConfig, "epochs") == "Epochs. (default: 300)"
    with pytest.raises(KeyError, match="no field 'temprature'"):
        cli.default(SimulateConfig, "temprature")


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, sim.cli; print(sorted({'torch', 'numba', 'networkx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- parsing --------------------------------------------------------------------------------------


def test_parsers_make_typed_values():
    assert cli.parse_epochs("0, 10,20", "observe-at") == (0, 10, 20)
    assert cli.parse_epochs("", "observe-at") == ()
    assert cli.parse_widths("16,32,32,1") == (16, 32, 32, 1)
    assert cli.parse_fraction(" 1/32") == Fraction(1, 32)
    assert cli.parse_fraction("0.25") == Fraction(1, 4)
    assert cli.parse_input("1,2.5") == (1.0, 2.5)
    assert cli.parse_input(" in.npy ") == Path("in.npy")


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (lambda t: cli.parse_epochs(t, "observe-at"), "0,x", "observe-at must be comma-separated"
         " epochs, got '0,x'"),
        (lambda t: cli.parse_epochs(t, "epochs", items="integers"), "two", "epochs must be "
         "comma-separated integers, got 'two'"),
        (lambda t: cli.parse_widths(t, "hidden widths"), "32,,4", "hidden widths must be "
         "comma-separated positive integers, got '32,,4'"),
        (cli.parse_widths, "", "widths must be comma-separated positive integers, got ''"),
        (cli.parse_fraction, "1/0", "width must be a number > 0 such as 0.25 or 1/32, got '1/0'"),
        (cli.parse_input, "1,a", "cannot read the input '1,a'"),
    ],
)  # fmt: skip
def test_parse_errors_name_the_text(parse, text, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


@pytest.mark.parametrize(
    ("command", "args", "needle"),
    [
        ("simulate", ["--hidden", "8,x"], "hidden widths must be comma-separated"),
        ("train", ["--dataset", DATA, "--observe-at", "0,a"], "observe-at must be comma-sep"),
        ("train", ["--dataset", DATA, "--hessian-at", "1;2"], "hessian-at must be comma-sep"),
        ("circuits", ["--width", "a/b", "--model", "vgg11"], "width must be a number > 0"),
        ("circuits", ["--x", "1,,2"], "cannot read the input '1,,2'"),
        ("circuits", ["--widths", "4,3,0,1"], "widths must be positive integers"),
        ("exact", ["--widths", "2;1"], "widths must be comma-separated"),
    ],
)
def test_bad_option_text_is_one_line_and_exit_2(command, args, needle, tmp_path):
    out = ["--out", str(tmp_path / "never")] if command in ("simulate", "train") else []
    res = runner.invoke(cli.app, [command, *args, *out])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.output
    assert not (tmp_path / "never").exists()


# -- validated(): values only ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (TrainConfig(dataset=DATA, observe_at="0,2"), "observe-at must be a list of epochs, got"),
        (TrainConfig(dataset=DATA, hessian_at="1"), "hessian-at must be a list of epochs, got '1'"),
        (TrainConfig(dataset=DATA, lr="0.1"), "learning rate must be a finite number > 0, got"),
        (TrainConfig(dataset=DATA, temperature="0"), "temperature must be a number, got '0'"),
        (TrainConfig(dataset=DATA, label_noise="0.1"), "label noise must be in [0, 1], got '0.1'"),
        (SimulateConfig(hidden="32,32"), "hidden widths must be a tuple of integers, got '32,32'"),
        (SimulateConfig(temperature="inf"), "temperature must be a number, got 'inf'"),
        (ExactConfig(widths="3,4,1"), "widths must be a tuple of integers, got '3,4,1'"),
        (ExactConfig(inputs="2"), "inputs must be an integer ≥ 1, got '2'"),
        (CircuitsConfig(width="1/32"), "width must be a number > 0 such as 0.25 or 1/32, got"),
        (CircuitsConfig(widths="4,1"), "widths must be a tuple of integers, got '4,1'"),
        (CircuitsConfig(x="1,2"), "x must be a tuple of numbers or the Path of a .npy file"),
    ],
)
def test_validated_refuses_text_naming_it(config, needle):
    with pytest.raises(ConfigError) as e:
        config.validated()
    assert str(e.value).startswith(needle) and "\n" not in str(e.value)


def test_validated_reads_no_files(tmp_path, monkeypatch):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    data = tmp_path / "data.npz"
    data.write_bytes(b"")
    train = TrainConfig(dataset=str(data), out=taken)
    simulate = SimulateConfig(out=taken)
    train.validated(), simulate.validated()  # imports done

    def no_io(*args, **kwargs):
        raise AssertionError("validated() touched the filesystem")

    with monkeypatch.context() as m:
        for name in ("exists", "is_dir", "is_file", "iterdir", "resolve", "stat"):
            m.setattr(Path, name, no_io)
        t = dataclasses.replace(train).validated()
        s = dataclasses.replace(simulate).validated()
    assert t.out == taken and t.dataset == str(data) and s.out == taken  # not checked, kept
    with pytest.raises(ConfigError, match="already exists"):
        from sim.train import prepare

        prepare(train)


def test_validated_returns_a_validated_copy_as_is_and_replace_unmarks():
    cfg = SimulateConfig(hidden=[3, 2]).validated()
    assert cfg.hidden == (3, 2) and "validated" in cfg.marks
    assert cfg.validated() is cfg
    assert dataclasses.replace(cfg, epochs=3).marks == frozenset()
    assert cfg == SimulateConfig(hidden=(3, 2)).validated() and "marks" not in cfg.to_json()


# -- once -----------------------------------------------------------------------------------------


def _count_validations(monkeypatch, config) -> list:
    calls = []
    original = config.validated

    def counting(self, *args, **kwargs):
        if "validated" not in self.marks:
            calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(config, "validated", counting)
    return calls


def _count(monkeypatch, module, name) -> list:
    calls = []
    original = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def test_simulate_validates_and_checks_its_directory_once(tmp_path, monkeypatch):
    from sim.runs import io

    validations = _count_validations(monkeypatch, SimulateConfig)
    checks = _count(monkeypatch, io, "check_out_dir")
    args = ["simulate", "--hidden", "3", "--epochs", "1", "--samples", "2", "--dataset", DATA]
    res = runner.invoke(cli.app, [*args, "--out", str(tmp_path / "s"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert len(validations) == 1 and len(checks) == 1


def test_train_and_resume_validate_once_and_check_the_filesystem_once(tmp_path, monkeypatch):
    import sim.train.loop
    from sim.runs import io

    out = tmp_path / "t"
    args = ["train", "--model", "mlp:3", "--dataset", DATA, "--epochs", "1", "--batch-size", "8"]
    validations = _count_validations(monkeypatch, TrainConfig)
    checks = _count(monkeypatch, io, "check_out_dir")
    res = runner.invoke(cli.app, [*args, "--out", str(out), "--quiet", "--no-figures"])
    assert res.exit_code == 0, res.output
    assert len(validations) == 1 and len(checks) == 1

    validations.clear()
    resumable = _count(monkeypatch, sim.train.loop, "check_resumable")
    again = ["--lr", "0.01", "--epochs", "1", "--observe-at", "0,1", "--dataset", DATA]
    res = runner.invoke(cli.app, ["train", "--resume", str(out), *again, "--quiet"])
    assert res.exit_code == 0, res.output
    assert len(resumable) == 1  # by resume_config; run() takes its result as is
    assert len(validations) == 1 + 4  # the run's config, then each option given again in it


# -- typer's own errors are one line too (reliability issue, item 10) ----------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["simulate", "--temperature", "abc"], "Invalid value for '--temperature'"),
        (["simulate", "--tempreature", "1"], "No such option: --tempreature"),
        (["hessian"], "Missing argument 'RUN'"),
        (["nothing"], "No such command 'nothing'"),
    ],
)
def test_parse_errors_are_one_line_naming_the_option(args, needle):
    res = runner.invoke(cli.app, args)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith("error: ") and needle in lines[0] and "╭" not in res.output


def test_a_diverged_simulate_run_says_so_even_when_quiet(tmp_path):
    out = tmp_path / "div"
    args = ["simulate", "--lr", "1e6", "--epochs", "2", "--hidden", "8", "--dataset", DATA]
    res = runner.invoke(cli.app, [*args, "--out", str(out), "--quiet"])
    assert res.exit_code == 0 and res.stderr.startswith("run diverged at epoch "), res.output
