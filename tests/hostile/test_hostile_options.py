"""Every command, every option, given a bad value: exit code 2, one line ``error: ...`` on
stderr naming the value or the option, no traceback, and nothing written — no ``--out``, no
default ``runs/`` directory, every run directory and file it was pointed at unchanged byte for
byte. (The reliability issue's corpus, the option cases; its file cases are in
``test_hostile_files.py``.)

The bad values are the usual ones: text where a number is expected, negative, zero where it
must be positive, ``nan``, ``inf``, sizes too large for memory, empty strings, malformed lists
(``3,,4``), unknown names, paths that do not exist, a file where a directory is expected and a
directory where a file is. Everything is generated in ``tmp_path`` at test time and run in
process (:class:`typer.testing.CliRunner`), each command on the smallest net that reaches the
check, so that a value wrongly accepted costs a second, not a run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pickle
import shutil
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app

runner = CliRunner()
DATA = "teacher:n=40,dim=5,n_test=10"
HUGE = "1000000000000"  # 10¹²: more of anything than memory holds

SIMULATE = ["simulate", "--epochs", "1", "--hidden", "3", "--samples", "2", "--dataset", DATA,
            "--quiet", "--out", "{out}"]  # fmt: skip
TRAIN = ["train", "--model", "mlp:3", "--dataset", DATA, "--epochs", "1", "--batch-size", "8",
         "--quiet", "--no-figures", "--out", "{out}"]  # fmt: skip
RESUME = ["train", "--resume", "{train}", "--quiet", "--no-figures"]
EXACT = ["exact", "--widths", "3,2,1", "--inputs", "1", "--samples", "10", "--json"]
CIRCUITS = ["circuits", "--samples", "10", "--checks", "2", "--inputs", "1", "--json",
            "--out", "{out}"]  # fmt: skip
MLP = [*CIRCUITS, "--widths", "3,2,1"]
VGG = [*CIRCUITS, "--model", "vgg11"]
HS = ["--hessian-at", "1", "--hessian-settings"]
HESSIAN = ["hessian", "{sim}", "--quiet", "--no-figures", "--lanczos-steps", "3", "--extreme-steps",
           "3", "--start-vectors", "2", "--entries", "0", "--grid-points", "11"]  # fmt: skip
HESSIAN_TRAIN = ["hessian", "{train}", *HESSIAN[2:]]
PHASES = ["phases", "{sim}", "--json"]


def _cuda() -> bool:
    """Whether this machine has a GPU (the gpu scale would then run, not fail)."""
    import torch

    return torch.cuda.is_available()


#: (command, the options a case gives beyond its base): what the coverage test counts
GIVEN: set[tuple[str, str]] = set()


def _cases(command: str, base: list[str], table: list[tuple]) -> list:
    """``(id, extra args, needle[, marks])`` rows as pytest params ``base + extra`` of
    ``command``."""
    GIVEN.update((command, a) for _, extra, *_ in table for a in extra if a.startswith("--"))
    return [
        pytest.param([*base, *extra], needle, id=f"{command}-{name}", marks=marks)
        for name, extra, needle, *marks in table
    ]


# -- umwelt simulate ------------------------------------------------------------------------------

CASES = _cases("simulate", SIMULATE, [
    ("temperature-text", ["--temperature", "abc"], "'--temperature': got 'abc'"),
    ("temperature-empty", ["--temperature", ""], "'--temperature': got ''"),
    ("temperature-negative", ["--temperature", "-1"],
     "temperature must be a number ≥ 0 (or inf), got -1"),
    ("temperature-nan", ["--temperature", "nan"],
     "temperature must be a number ≥ 0 (or inf), got nan"),
    ("temperature-minus-inf", ["--temperature", "-inf"], "got -inf"),
    ("hidden-double-comma", ["--hidden", "3,,4"],
     "hidden widths must be comma-separated positive integers, got '3,,4'"),
    ("hidden-empty", ["--hidden", ""],
     "hidden widths must be comma-separated positive integers, got ''"),
    ("hidden-blank", ["--hidden", "  "], "got '  '"),
    ("hidden-comma", ["--hidden", ","], "got ','"),
    ("hidden-zero", ["--hidden", "0"], "hidden widths must be positive integers, got (0,)"),
    ("hidden-negative", ["--hidden", "8,-3"], "got (8, -3)"),
    ("hidden-fraction", ["--hidden", "3.5"], "got '3.5'"),
    ("hidden-text", ["--hidden", "wide"], "got 'wide'"),
    ("hidden-semicolon", ["--hidden", "3;4"], "got '3;4'"),
    ("hidden-huge", ["--hidden", "100000000"], "needs about"),
    ("epochs-text", ["--epochs", "abc"], "'--epochs': got 'abc'"),
    ("epochs-fraction", ["--epochs", "1.5"], "'--epochs': got '1.5'"),
    ("epochs-zero", ["--epochs", "0"], "epochs must be an integer ≥ 1, got 0"),
    ("epochs-negative", ["--epochs", "-1"], "epochs must be an integer ≥ 1, got -1"),
    ("epochs-missing-value", ["--epochs"], "'--epochs' requires an argument"),
    ("lr-zero", ["--lr", "0"], "learning rate must be a finite number > 0, got 0.0"),
    ("lr-negative", ["--lr", "-0.1"], "got -0.1"),
    ("lr-nan", ["--lr", "nan"], "learning rate must be a finite number > 0, got nan"),
    ("lr-inf", ["--lr", "inf"], "learning rate must be a finite number > 0, got inf"),
    ("lr-text", ["--lr", "fast"], "'--lr': got 'fast'"),
    ("momentum-one", ["--momentum", "1"], "momentum must be in [0, 1), got 1.0"),
    ("momentum-negative", ["--momentum", "-0.5"], "got -0.5"),
    ("momentum-nan", ["--momentum", "nan"], "momentum must be in [0, 1), got nan"),
    ("momentum-large", ["--momentum", "1.5"], "got 1.5"),
    ("batch-size-zero", ["--batch-size", "0"], "batch size must be an integer ≥ 1, got 0"),
    ("batch-size-negative", ["--batch-size", "-8"], "got -8"),
    ("batch-size-text", ["--batch-size", "many"], "'--batch-size': got 'many'"),
    ("batch-size-huge", ["--batch-size", HUGE], "needs about"),
    ("samples-zero", ["--samples", "0"], "samples must be an integer ≥ 1, got 0"),
    ("samples-negative", ["--samples", "-2"], "got -2"),
    ("samples-huge", ["--samples", HUGE], "needs about"),
    ("dataset-unknown", ["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    ("dataset-empty", ["--dataset", ""], "dataset must be a name or a spec, got ''"),
    ("dataset-blank", ["--dataset", "   "], "got '   '"),
    ("dataset-knob-text", ["--dataset", "teacher:n=abc"], "n must be an integer, got 'abc'"),
    ("dataset-knob-negative", ["--dataset", "teacher:n=-5"], "-5"),
    ("dataset-knob-zero", ["--dataset", "random-labels:n=0"], "n"),
    ("dataset-knob-unknown", ["--dataset", "teacher:width=3"],
     "unknown key 'width' for dataset 'teacher'"),
    ("dataset-knob-no-value", ["--dataset", "teacher:n="], "malformed item 'n='"),
    ("dataset-knob-twice", ["--dataset", "teacher:n=5,n=6"], "key 'n' given twice"),
    ("dataset-knob-double-comma", ["--dataset", "teacher:n=5,,dim=3"], "malformed item ''"),
    ("dataset-noise-nan", ["--dataset", "teacher:noise=nan"], "nan"),
    ("dataset-noise-large", ["--dataset", "digits:noise=2"], "2"),
    ("dataset-hidden-text", ["--dataset", "teacher:hidden=4xq"], "got '4xq'"),
    ("dataset-g-unknown", ["--dataset", "hidden-manifold:g=cube"], "'cube'"),
    ("dataset-dim-zero", ["--dataset", "teacher:dim=0"], "dim"),
    ("dataset-huge", ["--dataset", f"random-labels:n={HUGE}"], "needs about"),
    ("dataset-missing-path", ["--dataset", "{missing}/cifar-10-batches-py"], "does not exist"),
    ("dataset-a-text-file", ["--dataset", "{file}"], "afile"),
    ("dataset-an-empty-dir", ["--dataset", "{empty}"], "empty"),
    ("dataset-name-too-long", ["--dataset", "{long}"], "File name too long"),
    ("dataset-a-device", ["--dataset", "/dev/null"], "is neither a directory nor a file"),
    ("dataset-a-named-pipe", ["--dataset", "{pipe}"], "pipe' is neither a directory nor a file"),
    ("loss-unknown", ["--loss", "squared"], "'squared'"),
    ("loss-empty", ["--loss", ""], "''"),
    ("seed-negative", ["--seed", "-1"], "seed must be an integer ≥ 0, got -1"),
    ("seed-text", ["--seed", "x"], "'--seed': got 'x'"),
    ("device-unknown", ["--device", "gpu"], "'gpu'"),
    ("device-empty", ["--device", ""], "''"),
    ("device-cuda-index-text", ["--device", "cuda:x"], "'cuda:x'"),
    ("device-cuda-99", ["--device", "cuda:99"], "'cuda:99'"),
    ("dtype-unknown", ["--dtype", "float16"], "unknown dtype 'float16'"),
    ("dtype-empty", ["--dtype", ""], "unknown dtype ''"),
    ("out-a-file", ["--out", "{file}"], "is a file, not a directory"),
    ("out-under-a-file", ["--out", "{file}/run"], "which is a file"),
    ("out-under-proc", ["--out", "/proc/umwelt-run"], "cannot write in"),
    ("out-name-too-long", ["--out", "{long}"], "File name too long"),
    ("out-a-broken-link", ["--out", "{broken_link}"], "is a broken symbolic link"),
    ("out-under-a-broken-link", ["--out", "{broken_link}/run"], "which is a broken symbolic link"),
    ("out-a-link-loop", ["--out", "{loop}"], "Too many levels of symbolic links"),
    ("out-not-empty", ["--out", "{junk}"], "already exists and is not empty"),
    ("out-an-existing-run", ["--out", "{sim}"], "already exists and is not empty"),
    ("option-unknown", ["--tempreature", "1"], "No such option: --tempreature"),
    ("argument-extra", ["extra"], "unexpected extra argument(s) (extra)"),
])  # fmt: skip

# -- umwelt train ---------------------------------------------------------------------------------

CASES += _cases("train", TRAIN, [
    ("model-unknown", ["--model", "resnet50"], "'resnet50'"),
    ("model-empty", ["--model", ""], "model must be a VGG preset or mlp:<widths>, got ''"),
    ("model-mlp-no-widths", ["--model", "mlp:"], "'mlp:'"),
    ("model-mlp-double-comma", ["--model", "mlp:3,,4"], "3,,4"),
    ("model-mlp-zero", ["--model", "mlp:0"], "0"),
    ("model-mlp-negative", ["--model", "mlp:-3"], "-3"),
    ("model-mlp-text", ["--model", "mlp:wide"], "wide"),
    ("model-mlp-huge", ["--model", "mlp:100000000"], "needs about"),
    ("model-vgg-huge", ["--model", "vgg11", "--width", "100000"], "needs about"),
    ("width-zero", ["--width", "0"], "width must be a finite number > 0, got 0.0"),
    ("width-negative", ["--width", "-1"], "got -1.0"),
    ("width-nan", ["--width", "nan"], "got nan"),
    ("width-inf", ["--width", "inf"], "got inf"),
    ("width-text", ["--width", "1/4"], "'--width': got '1/4'"),
    ("dataset-unknown", ["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    ("dataset-empty", ["--dataset", ""], "dataset must be a name, a spec or a path, got ''"),
    ("dataset-knob-text", ["--dataset", "teacher:n=abc"], "got 'abc'"),
    ("dataset-knob-unknown", ["--dataset", "teacher:bogus=1"], "unknown key 'bogus'"),
    ("dataset-huge", ["--dataset", f"teacher:n={HUGE}"], "needs about"),
    ("dataset-digits-fraction", ["--dataset", "digits:test_fraction=2"], "2"),
    ("dataset-missing-path", ["--dataset", "{missing}/data.tar.gz"], "does not exist"),
    ("dataset-a-text-file", ["--dataset", "{file}"], "afile"),
    ("dataset-an-empty-dir", ["--dataset", "{empty}"], "empty"),
    ("dataset-name-too-long", ["--dataset", "{long}"], "File name too long"),
    ("dataset-a-device", ["--dataset", "/dev/null"], "is neither a directory nor a file"),
    ("dataset-a-named-pipe", ["--dataset", "{pipe}"], "pipe' is neither a directory nor a file"),
    ("dataset-a-broken-tar", ["--dataset", "{tar}"], "broken.tar.gz"),
    ("classes-for-synthetic", ["--classes", "cat,dog"],
     "classes='cat,dog' applies to CIFAR-10 paths only"),
    ("classes-empty", ["--classes", ""], "classes must be 'a,b' or a grouping name, got ''"),
    ("subset-zero", ["--subset", "0"], "subset must be an integer ≥ 2, got 0"),
    ("subset-one", ["--subset", "1"], "got 1"),
    ("subset-negative", ["--subset", "-5"], "got -5"),
    ("subset-text", ["--subset", "half"], "'--subset': got 'half'"),
    ("subset-for-synthetic", ["--subset", "10"], "subset=10 applies to CIFAR-10 paths only"),
    ("subset-test-zero", ["--subset-test", "0"], "subset test must be an integer ≥ 2, got 0"),
    ("subset-test-for-synthetic", ["--subset-test", "10"], "subset_test=10 applies to CIFAR-10"),
    ("label-noise-negative", ["--label-noise", "-0.1"], "label noise must be in [0, 1], got -0.1"),
    ("label-noise-large", ["--label-noise", "1.5"], "got 1.5"),
    ("label-noise-nan", ["--label-noise", "nan"], "got nan"),
    ("label-noise-for-synthetic", ["--label-noise", "0.1"], "label_noise=0.1 applies to CIFAR-10"),
    ("temperature-negative", ["--temperature", "-1"],
     "temperature must be a number ≥ 0 (or inf), got -1"),
    ("temperature-nan", ["--temperature", "nan"], "got nan"),
    ("temperature-text", ["--temperature", "warm"], "'--temperature': got 'warm'"),
    ("gate-mode-unknown", ["--gate-mode", "hard"], "'hard'"),
    ("gate-mode-empty", ["--gate-mode", ""], "''"),
    ("loss-unknown", ["--loss", "mse"], "'mse'"),
    ("epochs-negative", ["--epochs", "-1"], "epochs must be an integer ≥ 0, got -1"),
    ("epochs-text", ["--epochs", "ten"], "'--epochs': got 'ten'"),
    ("lr-zero", ["--lr", "0"], "learning rate must be a finite number > 0, got 0.0"),
    ("lr-nan", ["--lr", "nan"], "got nan"),
    ("lr-inf", ["--lr", "inf"], "got inf"),
    ("momentum-one", ["--momentum", "1"], "momentum must be in [0, 1), got 1.0"),
    ("momentum-nan", ["--momentum", "nan"], "got nan"),
    ("batch-size-zero", ["--batch-size", "0"], "batch size must be an integer ≥ 1, got 0"),
    ("batch-size-negative", ["--batch-size", "-1"], "got -1"),
    ("batch-size-huge", ["--batch-size", HUGE], "needs about"),
    ("gain-zero", ["--gain", "0"], "gain must be a finite number > 0, got 0.0"),
    ("gain-negative", ["--gain", "-1.4"], "got -1.4"),
    ("gain-nan", ["--gain", "nan"], "got nan"),
    ("gain-inf", ["--gain", "inf"], "got inf"),
    ("seed-negative", ["--seed", "-3"], "seed must be an integer ≥ 0, got -3"),
    ("device-unknown", ["--device", "tpu"], "'tpu'"),
    ("device-cuda-99", ["--device", "cuda:99"], "'cuda:99'"),
    ("dtype-unknown", ["--dtype", "bfloat16"], "unknown dtype 'bfloat16'"),
    ("observe-at-double-comma", ["--observe-at", "0,,1"],
     "observe-at must be comma-separated epochs, got '0,,1'"),
    ("observe-at-text", ["--observe-at", "first"], "got 'first'"),
    ("observe-at-fraction", ["--observe-at", "0.5"], "got '0.5'"),
    ("observe-at-negative", ["--observe-at", "-1"],
     "observe-at epoch -1 is outside the run's epochs 0..1"),
    ("observe-at-beyond", ["--observe-at", "0,5"],
     "observe-at epoch 5 is outside the run's epochs 0..1"),
    ("checkpoint-every-negative", ["--checkpoint-every", "-1"],
     "checkpoint every must be an integer ≥ 0, got -1"),
    ("checkpoint-every-text", ["--checkpoint-every", "often"], "'--checkpoint-every': got 'often'"),
    ("eval-batch-size-zero", ["--eval-batch-size", "0"],
     "eval batch size must be an integer ≥ 1, got 0"),
    ("eval-batch-size-huge", ["--eval-batch-size", HUGE], "needs about"),
    ("stop-at-phase-unknown", ["--stop-at-phase", "plastic"],
     "stop-at-phase must be one of converged, frustration, got 'plastic'"),
    ("stop-at-phase-empty", ["--stop-at-phase", ""], "got ''"),
    ("hessian-at-text", ["--hessian-at", "last"],
     "hessian-at must be comma-separated epochs, got 'last'"),
    ("hessian-at-double-comma", ["--hessian-at", "0,,1"], "got '0,,1'"),
    ("hessian-at-beyond", ["--hessian-at", "9"],
     "hessian-at epoch 9 is outside the run's epochs 0..1"),
    ("hessian-at-negative", ["--hessian-at", "-1"], "hessian-at epoch -1 is outside"),
    ("hessian-settings-alone", ["--hessian-settings", "entries=10"],
     "--hessian-settings needs --hessian-at"),
    ("hessian-settings-no-equals", [*HS, "entries"],
     "a Hessian setting is KEY=VALUE, got 'entries'"),
    ("hessian-settings-no-key", [*HS, "=3"], "got '=3'"),
    ("hessian-settings-no-value", [*HS, "entries="], "got 'entries='"),
    ("hessian-settings-double-comma", [*HS, "entries=5,,seed=1"], "got ''"),
    ("hessian-settings-unknown-key", [*HS, "steps=5"], "unknown Hessian setting 'steps'"),
    ("hessian-settings-text", [*HS, "lanczos_steps=x"],
     "Hessian setting lanczos_steps must be an integer, got 'x'"),
    ("hessian-settings-fraction", [*HS, "entries=2.5"], "got '2.5'"),
    ("hessian-settings-zero", [*HS, "lanczos_steps=0"],
     "lanczos steps must be an integer ≥ 1, got 0"),
    ("hessian-settings-bootstrap", [*HS, "bootstrap=5"],
     "bootstrap resamples must be an integer ≥ 20, got 5"),
    ("hessian-settings-reorth", [*HS, "reorth=some"], "reorth must be full or none, got 'some'"),
    ("hessian-settings-blocks", [*HS, "blocks=maybe"],
     "Hessian setting blocks must be true or false, got 'maybe'"),
    ("hessian-settings-dtype", [*HS, "dtype=half"],
     "dtype half is too coarse for the Hessian's products"),
    ("hessian-settings-smoothing-nan", [*HS, "smoothing=nan"],
     "smoothing must be a finite number > 0, got nan"),
    ("hessian-settings-margin", [*HS, "grid_margin=0.5"], "the grid margin must be ≥ 1, got 0.5"),
    ("hessian-settings-grid-points", [*HS, "grid_points=2"],
     "grid points must be an integer ≥ 3, got 2"),
    ("hessian-settings-grid-huge", [*HS, f"grid_points={HUGE}"], "needs about"),
    ("out-a-file", ["--out", "{file}"], "is a file, not a directory"),
    ("out-under-a-file", ["--out", "{file}/run"], "which is a file"),
    ("out-under-proc", ["--out", "/proc/umwelt-run"], "cannot write in"),
    ("out-name-too-long", ["--out", "{long}"], "File name too long"),
    ("out-a-broken-link", ["--out", "{broken_link}"], "is a broken symbolic link"),
    ("out-under-a-broken-link", ["--out", "{broken_link}/run"], "which is a broken symbolic link"),
    ("out-a-link-loop", ["--out", "{loop}"], "Too many levels of symbolic links"),
    ("out-not-empty", ["--out", "{junk}"], "already exists and is not empty"),
    ("out-a-finished-run", ["--out", "{train}"], "already exists and is not empty"),
    ("out-a-simulate-run", ["--out", "{sim}"], "already exists and is not empty"),
    ("option-unknown", ["--epoch", "1"], "No such option: --epoch"),
    ("flag-given-a-value", ["--stop-at-zero-loss", "yes"], "unexpected extra argument(s) (yes)"),
])  # fmt: skip
CASES += _cases("train", [*TRAIN, "--dataset", "{cifar}"], [
    ("classes-unknown", ["--classes", "cat,unicorn"], "unicorn"),
    ("classes-one", ["--classes", "cat"], "'cat'"),
    ("classes-three", ["--classes", "cat,dog,bird"], "'cat,dog,bird'"),
    ("classes-twice", ["--classes", "cat,cat"], "'cat,cat'"),
    ("classes-double-comma", ["--classes", "cat,,dog"], "'cat,,dog'"),
    ("subset-beyond", ["--subset", "1000"], "1000"),
    ("subset-test-beyond", ["--subset-test", "1000"], "1000"),
    ("subset-odd", ["--subset", "3"], "3"),
])  # fmt: skip
LOUD = [a for a in TRAIN if a != "--quiet"]  # a progress bar, where a terminal shows one
CASES += _cases("train", LOUD, [
    ("loud-dataset-a-broken-tar", ["--dataset", "{tar}"], "broken.tar.gz' is not CIFAR-10 data"),
    ("loud-dataset-a-named-pipe", ["--dataset", "{pipe}"],
     "pipe' is neither a directory nor a file"),
    ("loud-classes-unknown", ["--dataset", "{cifar}", "--classes", "cat,unicorn"], "unicorn"),
])  # fmt: skip
CASES += _cases("hessian", [a for a in HESSIAN if a != "--quiet"], [
    ("loud-lanczos-steps-beyond", ["--lanczos-steps", "25"], "--lanczos-steps 25 exceeds"),
    ("loud-grid-points-huge", ["--grid-points", HUGE], "needs about"),
])  # fmt: skip
CASES += _cases("train", ["train", "--model", "mlp:3", "--out", "{out}", "--quiet"], [
    ("dataset-not-given", [], "--dataset is required"),
])  # fmt: skip
CASES += _cases("train", RESUME, [
    ("resume-missing", ["--resume", "{missing}"], "no such run directory"),
    ("resume-a-file", ["--resume", "{file}"], "no such run directory"),
    ("resume-name-too-long", ["--resume", "{long}"], "File name too long"),
    ("resume-a-link-loop", ["--resume", "{loop}"], "Too many levels of symbolic links"),
    ("resume-an-empty-dir", ["--resume", "{empty}"], "no config.json"),
    ("resume-not-a-run", ["--resume", "{junk}"], "no config.json"),
    ("resume-a-simulate-run", ["--resume", "{sim}"],
     "is a simulate run; only umwelt train runs resume"),
    ("resume-changed-lr", ["--lr", "0.5"], "lr = "),
    ("resume-changed-model", ["--model", "mlp:9"], "model = "),
    ("resume-bad-lr", ["--lr", "nan"], "nan"),
    ("resume-bad-epochs", ["--epochs", "-1"], "-1"),
    ("resume-other-out", ["--out", "{out}"], "differs from --resume"),
])  # fmt: skip

# -- umwelt exact ---------------------------------------------------------------------------------

CASES += _cases("exact", EXACT, [
    ("widths-double-comma", ["--widths", "3,,2,1"],
     "widths must be comma-separated positive integers, got '3,,2,1'"),
    ("widths-empty", ["--widths", ""], "got ''"),
    ("widths-zero", ["--widths", "3,0,1"], "widths must be positive integers, got (3, 0, 1)"),
    ("widths-negative", ["--widths", "3,-2,1"], "got (3, -2, 1)"),
    ("widths-text", ["--widths", "a,b"], "got 'a,b'"),
    ("widths-fraction", ["--widths", "3,2.5,1"], "got '3,2.5,1'"),
    ("widths-one-layer", ["--widths", "3"], "3"),
    ("widths-output-not-1", ["--widths", "3,2,2"], "3"),
    ("widths-enumeration-too-large", ["--widths", "3,30,1"], "2^30"),
    ("widths-enumeration-unprintable", ["--widths", "3,20000,1"], "2^20000"),
    ("temperature-negative", ["--temperature", "-0.5"],
     "temperature must be a number ≥ 0 (or inf), got -0.5"),
    ("temperature-nan", ["--temperature", "nan"], "got nan"),
    ("temperature-text", ["--temperature", "hot"], "'--temperature': got 'hot'"),
    ("inputs-zero", ["--inputs", "0"], "inputs must be an integer ≥ 1, got 0"),
    ("inputs-negative", ["--inputs", "-4"], "got -4"),
    ("inputs-text", ["--inputs", "four"], "'--inputs': got 'four'"),
    ("inputs-huge", ["--inputs", HUGE], "needs about"),
    ("samples-one", ["--samples", "1"], "samples must be 0 (exact only) or at least 2, got 1"),
    ("samples-negative", ["--samples", "-10"], "samples must be an integer ≥ 0, got -10"),
    ("samples-huge", ["--samples", HUGE], "needs about"),
    ("seed-negative", ["--seed", "-1"], "seed must be an integer ≥ 0, got -1"),
    ("flag-given-a-value", ["--json", "yes"], "unexpected extra argument(s) (yes)"),
    ("option-unknown", ["--width", "3"], "No such option: --width"),
])  # fmt: skip

# -- umwelt circuits ------------------------------------------------------------------------------

CASES += _cases("circuits", MLP, [
    ("widths-double-comma", ["--widths", "3,,1"],
     "widths must be comma-separated positive integers, got '3,,1'"),
    ("widths-empty", ["--widths", ""], "got ''"),
    ("widths-zero", ["--widths", "3,0,1"], "widths must be positive integers, got (3, 0, 1)"),
    ("widths-output-not-1", ["--widths", "3,2,2"],
     "widths must be n_0,...,n_L with n_L = 1, got (3, 2, 2)"),
    ("widths-one-layer", ["--widths", "3"], "got (3,)"),
    ("widths-text", ["--widths", "x"], "got 'x'"),
    ("widths-huge", ["--widths", "100000,100000,1"], "needs about"),
    ("two-nets", ["--model", "tiny-conv"], "give one net: --widths or --model, not both"),
    ("x-text", ["--x", "abc"], "cannot read the input 'abc'"),
    ("x-double-comma", ["--x", "1,,2"], "cannot read the input '1,,2'"),
    ("x-empty", ["--x", ""], "cannot read the input ''"),
    ("x-wrong-size", ["--x", "1,2"], "the input has 2 values"),
    ("x-nan", ["--x", "nan,1,2"], "x must be finite numbers, got (nan, 1.0, 2.0)"),
    ("x-inf", ["--x", "1,inf,2"], "got (1.0, inf, 2.0)"),
    ("x-missing-npy", ["--x", "{missing}/x.npy"], "no input file"),
    ("x-text-npy", ["--x", "{npy_text}"], "--x: cannot read the array '"),
    ("x-pickled-npy", ["--x", "{npy_object}"], "object.npy': Object arrays cannot be loaded"),
    ("x-nan-npy", ["--x", "{npy_nan}"], "nan.npy' holds non-finite values"),
    ("x-wrong-size-npy", ["--x", "{npy_five}"], "the input has 5 values"),
    ("x-a-directory-npy", ["--x", "{dir_npy}"], "dir.npy': it is a directory"),
    ("x-a-named-pipe-npy", ["--x", "{pipe_npy}"], "pipe.npy': it is not a regular file"),
    ("seed-negative", ["--seed", "-1"], "seed must be an integer ≥ 0, got -1"),
    ("inputs-zero", ["--inputs", "0"], "inputs must be an integer ≥ 1, got 0"),
    ("inputs-huge", ["--inputs", HUGE], "needs about"),
    ("samples-one", ["--samples", "1"], "samples must be an integer ≥ 2, got 1"),
    ("samples-negative", ["--samples", "-1"], "got -1"),
    ("samples-huge", ["--samples", HUGE], "needs about"),
    ("temperature-negative", ["--temperature", "-1"],
     "temperature must be a number ≥ 0 (or inf), got -1"),
    ("temperature-nan", ["--temperature", "nan"], "got nan"),
    ("pool-unknown", ["--pool", "max"], "pool must be 'select' or 'gate', got 'max'"),
    ("max-circuits-zero", ["--max-circuits", "0"], "max_circuits must be an integer ≥ 1, got 0"),
    ("enumerate-over-budget", ["--enumerate", "--max-circuits", "1"], "--max-circuits"),
    ("checks-negative", ["--checks", "-1"], "checks must be an integer ≥ 0, got -1"),
    ("circuit-negative", ["--circuit", "-1"], "-1"),
    ("circuit-beyond", ["--circuit", "1000000"], "1000000"),
    ("circuit-text", ["--circuit", "first"], "'--circuit': got 'first'"),
    ("out-a-file", ["--out", "{file}"], "is a file, not a directory"),
    ("out-under-a-file", ["--out", "{file}/figs"], "which is a file"),
    ("out-under-proc", ["--out", "/proc/umwelt-circuits"], "cannot write in"),
    ("out-name-too-long", ["--out", "{long}"], "File name too long"),
    ("out-a-broken-link", ["--out", "{broken_link}"], "is a broken symbolic link"),
    ("out-under-a-broken-link", ["--out", "{broken_link}/run"], "which is a broken symbolic link"),
    ("out-a-link-loop", ["--out", "{loop}"], "Too many levels of symbolic links"),
    ("option-unknown", ["--sample", "3"], "No such option: --sample"),
])  # fmt: skip
CASES += _cases("circuits", VGG, [
    ("model-unknown", ["--model", "vgg99"], "unknown model 'vgg99'"),
    ("model-empty", ["--model", ""], "unknown model ''"),
    ("width-zero", ["--width", "0"], "width must be a number > 0 such as 0.25 or 1/32, got 0"),
    ("width-negative", ["--width", "-1/32"], "got -1/32"),
    ("width-text", ["--width", "thin"], "got 'thin'"),
    ("width-divide-by-zero", ["--width", "1/0"], "got '1/0'"),
    ("width-empty", ["--width", ""], "got ''"),
    ("width-nan", ["--width", "nan"], "got 'nan'"),
    ("width-inf", ["--width", "inf"], "got 'inf'"),
    ("width-huge", ["--width", "100000"], "needs about"),
])  # fmt: skip
CASES += _cases("circuits", CIRCUITS, [
    ("checkpoint-missing", ["--checkpoint", "{missing}"], "missing"),
    ("checkpoint-a-file", ["--checkpoint", "{file}"], "afile' is a file, not a run directory"),
    ("checkpoint-name-too-long", ["--checkpoint", "{long}"], "File name too long"),
    ("checkpoint-an-empty-dir", ["--checkpoint", "{empty}"], "empty"),
    ("checkpoint-not-a-run", ["--checkpoint", "{junk}"], "junk"),
    ("checkpoint-which-unknown", ["--checkpoint", "{sim}", "--which", "best"], "'best'"),
    ("checkpoint-which-epoch-absent", ["--checkpoint", "{train}", "--which", "7"], "7"),
    ("checkpoint-which-negative", ["--checkpoint", "{train}", "--which", "-1"], "-1"),
    ("checkpoint-which-text", ["--checkpoint", "{train}", "--which", "finite_T"], "finite_T"),
    ("checkpoint-and-widths", ["--checkpoint", "{sim}", "--widths", "3,2,1"], "give one net"),
    ("graph-missing", ["--graph", "{missing}/g.json"], "no circuit graph file"),
    ("graph-not-json", ["--graph", "{file}"], "afile' is not valid JSON"),
    ("graph-a-directory", ["--graph", "{empty}"], "empty': it is a directory"),
    ("graph-dev-null", ["--graph", "/dev/null"], "not a regular file (a pipe or a device)"),
    ("graph-a-named-pipe", ["--graph", "{pipe}"], "pipe': it is not a regular file"),
    ("graph-name-too-long", ["--graph", "{long}"], "File name too long"),
    ("graph-no-edges", ["--graph", "{graph_no_edges}"], 'a circuit graph file must hold {"edges"'),
    ("graph-bad-edge", ["--graph", "{graph_bad_edge}"], "edge 0 must be [u, v, weight]"),
    ("graph-bad-weight", ["--graph", "{graph_bad_weight}"], "heavy"),
])  # fmt: skip
# the assembly moments through training: --run, --epochs, --plant-mean
CASES += _cases("circuits", [*CIRCUITS, "--run", "{train}"], [
    ("run-epoch-absent", ["--epochs", "0,7"], "epoch 7 not in the run"),
    ("run-epochs-text", ["--epochs", "last"],
     "epochs must be comma-separated integers, got 'last'"),
    ("run-epochs-double-comma", ["--epochs", "0,,1"], "got '0,,1'"),
    ("run-epochs-negative", ["--epochs", "-1"], "an epoch must be an integer ≥ 0, got -1"),
    ("run-epochs-empty", ["--epochs", ""], "epochs must name at least one epoch"),
    ("run-plant-fraction-above-1", ["--plant-mean", "1.5:1"],
     "plant fraction must be in [0, 1], got 1.5"),
    ("run-plant-fraction-negative", ["--plant-mean", "-0.1:1"],
     "plant fraction must be in [0, 1], got -0.1"),
    ("run-plant-fraction-nan", ["--plant-mean", "nan:1"], "plant fraction must be in [0, 1]"),
    ("run-plant-shift-text", ["--plant-mean", "0.25:up"],
     "--plant-mean must be FRACTION:SHIFT, two numbers such as 0.25:1, got '0.25:up'"),
    ("run-plant-no-colon", ["--plant-mean", "0.25"], "got '0.25'"),
    ("run-plant-empty", ["--plant-mean", ""], "got ''"),
    ("run-plant-three-parts", ["--plant-mean", "0.25:1:2"], "got '0.25:1:2'"),
    ("run-plant-shift-nan", ["--plant-mean", "0.25:nan"],
     "plant shift must be a finite number, got nan"),
    ("run-plant-shift-inf", ["--plant-mean", "0.25:inf"], "got inf"),
    ("run-and-widths", ["--widths", "3,2,1"], "give one net: --widths or --run, not both"),
    ("run-and-moments", ["--moments"], "give --run (moments through training) or --moments"),
    ("run-inputs-huge", ["--inputs", HUGE], "needs about"),
    ("run-samples-huge", ["--samples", HUGE], "needs about"),
    ("run-x-wrong-size", ["--x", "1,2"], "the input has 2 values"),
])  # fmt: skip
CASES += _cases("circuits", CIRCUITS, [
    ("run-missing", ["--run", "{missing}"], "no run directory"),
    ("run-a-file", ["--run", "{file}"], "afile' is a file, not a run directory"),
    ("run-an-empty-dir", ["--run", "{empty}"], "is not a run directory of umwelt train"),
    ("run-not-a-run", ["--run", "{junk}"], "junk' is not a run directory of umwelt train"),
    ("run-name-too-long", ["--run", "{long}"], "File name too long"),
    ("run-a-broken-link", ["--run", "{broken_link}"], "no run directory"),
    ("epochs-without-run", ["--widths", "3,2,1", "--epochs", "0"],
     "--epochs is for --run (the assembly moments through training)"),
    ("plant-mean-without-run", ["--widths", "3,2,1", "--plant-mean", "0.25:1"],
     "--plant-mean is for --run"),
])  # fmt: skip

# -- umwelt hessian -------------------------------------------------------------------------------

CASES += _cases("hessian", ["hessian"], [
    ("run-missing", ["{missing}"], "missing"),
    ("run-a-file", ["{file}"], "afile' is a file, not a run directory"),
    ("run-name-too-long", ["{long}"], "File name too long"),
    ("run-a-link-loop", ["{loop}"], "Too many levels of symbolic links"),
    ("run-an-empty-dir", ["{empty}"], "empty"),
    ("run-not-a-run", ["{junk}"], "junk"),
    ("run-not-given", [], "Missing argument 'RUN'"),
])  # fmt: skip
CASES += _cases("hessian", HESSIAN, [
    ("epochs-text", ["--epochs", "last"], "epochs must be comma-separated integers, got 'last'"),
    ("epochs-double-comma", ["--epochs", "0,,1"], "got '0,,1'"),
    ("epochs-empty", ["--epochs", ""], "no epochs given"),
    ("epochs-negative", ["--epochs", "-1"], "an epoch must be an integer ≥ 0, got -1"),
    ("epochs-absent", ["--epochs", "5"], "epoch 5 is not in the run"),
    ("net-unknown", ["--net", "both"], "net must be one of finite_T, relu, got 'both'"),
    ("examples-one", ["--examples", "1"], "examples must be an integer ≥ 2, got 1"),
    ("examples-negative", ["--examples", "-1"], "got -1"),
    ("examples-text", ["--examples", "all"], "'--examples': got 'all'"),
    ("batch-size-zero", ["--batch-size", "0"], "batch size must be an integer ≥ 1, got 0"),
    ("lanczos-steps-zero", ["--lanczos-steps", "0"], "lanczos steps must be an integer ≥ 1, got 0"),
    ("lanczos-steps-huge", ["--lanczos-steps", HUGE], HUGE),
    ("start-vectors-one", ["--start-vectors", "1"], "start vectors must be an integer ≥ 2, got 1"),
    ("reorth-unknown", ["--reorth", "partial"], "reorth must be full or none, got 'partial'"),
    ("extremes-unknown", ["--extremes", "power"],
     "extremes must be one of slq, lanczos, eigsh, got 'power'"),
    ("extreme-steps-zero", ["--extreme-steps", "0"], "extreme steps must be an integer ≥ 1, got 0"),
    ("entries-negative", ["--entries", "-1"], "entries must be an integer ≥ 0, got -1"),
    ("entries-huge", ["--entries", HUGE], HUGE),
    ("entry-columns-negative", ["--entry-columns", "-1"],
     "entry columns must be an integer ≥ 1, got -1"),
    ("bootstrap-19", ["--bootstrap", "19"], "bootstrap resamples must be an integer ≥ 20, got 19"),
    ("bootstrap-huge", ["--entries", "10", "--bootstrap", "1000000000"], "needs about"),
    ("grid-bound-zero", ["--grid-bound", "0"], "grid bound must be a finite number > 0, got 0.0"),
    ("grid-bound-negative", ["--grid-bound", "-1"], "got -1.0"),
    ("grid-bound-nan", ["--grid-bound", "nan"], "got nan"),
    ("grid-bound-inf", ["--grid-bound", "inf"], "got inf"),
    ("grid-points-two", ["--grid-points", "2"], "grid points must be an integer ≥ 3, got 2"),
    ("grid-points-huge", ["--grid-points", "1000000000001"], "needs about"),
    ("smoothing-zero", ["--smoothing", "0"], "smoothing must be a finite number > 0, got 0.0"),
    ("smoothing-nan", ["--smoothing", "nan"], "got nan"),
    ("smoothing-inf", ["--smoothing", "inf"], "got inf"),
    ("seed-negative", ["--seed", "-1"], "seed must be an integer ≥ 0, got -1"),
    ("device-unknown", ["--device", "gpu"], "'gpu'"),
    ("device-cuda-99", ["--device", "cuda:99"], "'cuda:99'"),
    ("dtype-unknown", ["--dtype", "float8"],
     "dtype must be one of auto, float32, float64, got 'float8'"),
    ("dtype-coarse", ["--dtype", "float16"], "dtype float16 is too coarse"),
    ("corr-entries-unknown", ["--corr-entries", "random"],
     "corr entries must be one of uniform, columns, got 'random'"),
    ("uniform-entries-negative", ["--uniform-entries", "-1"],
     "uniform entries must be an integer ≥ 0, got -1"),
    ("deflation-steps-negative", ["--deflation-steps", "-1"],
     "deflation steps must be an integer ≥ 0, got -1"),
    ("deflation-steps-huge", ["--deflation-steps", "100000"], "--deflation-steps 100000 exceeds"),
    ("block-vectors-one", ["--blocks", "--block-vectors", "1"],
     "block vectors must be an integer ≥ 2, got 1"),
    ("block-vectors-huge", ["--blocks", "--block-vectors", "65"],
     "block vectors must be at most 64, got 65"),
    ("option-unknown", ["--steps", "3"], "No such option: --steps"),
])  # fmt: skip
CASES += _cases("hessian", HESSIAN_TRAIN, [
    ("train-run-net-relu", ["--net", "relu"], "relu"),
    ("train-run-epochs-absent", ["--epochs", "0,3"], "epoch 3 is not in the run"),
    ("train-run-examples-beyond", ["--examples", HUGE], HUGE),
])  # fmt: skip

# -- umwelt plot ----------------------------------------------------------------------------------

CASES += _cases("plot", ["plot"], [
    ("run-missing", ["{missing}"], "missing"),
    ("run-a-file", ["{file}"], "afile' is a file, not a run directory"),
    ("run-name-too-long", ["{long}"], "File name too long"),
    ("run-a-link-loop", ["{loop}"], "Too many levels of symbolic links"),
    ("run-an-empty-dir", ["{empty}"], "empty"),
    ("run-not-a-run", ["{junk}"], "junk"),
    ("run-not-given", [], "Missing argument 'RUN|DIR'"),
    ("run-two", ["{sim}", "{train}"], "unexpected extra argument"),
    ("x-for-a-run", ["{sim}", "--x", "n_params"], "--x, --y and --facet are for sweep directories"),
    ("y-for-a-run", ["{train}", "--y", "n_train"],
     "--x, --y and --facet are for sweep directories"),
    ("facet-for-a-run", ["{sim}", "--facet", "seed"],
     "--x, --y and --facet are for sweep directories"),
])  # fmt: skip

# -- umwelt phases --------------------------------------------------------------------------------

CASES += _cases("phases", ["phases"], [
    ("run-missing", ["{missing}"], "missing"),
    ("run-a-file", ["{file}"], "afile' is a file, not a run directory"),
    ("run-name-too-long", ["{long}"], "File name too long"),
    ("run-a-link-loop", ["{loop}"], "Too many levels of symbolic links"),
    ("run-an-empty-dir", ["{empty}"], "empty"),
    ("run-not-a-run", ["{junk}"], "junk"),
])  # fmt: skip
CASES += _cases("phases", PHASES, [
    ("window-zero", ["--window", "0"], "the phase window must be an integer ≥ 2 epochs, got 0"),
    ("window-one", ["--window", "1"], "got 1"),
    ("window-negative", ["--window", "-5"], "got -5"),
    ("window-text", ["--window", "wide"], "'--window': got 'wide'"),
    *[
        (f"{opt}-{kind}", [f"--{opt}", value],
         f"the phase threshold {opt.replace('-', '_')} must be in [0, 1), got {shown}")
        for opt in ("flat-tol", "op-tol", "unsat-tol", "neg-tol", "psd-eps", "two-sided-min")
        for kind, value, shown in (("negative", "-0.1", "-0.1"), ("one", "1", "1.0"),
                                   ("nan", "nan", "nan"), ("inf", "inf", "inf"))
    ],
    ("flat-tol-text", ["--flat-tol", "small"], "'--flat-tol': got 'small'"),
    ("two-sided-below-neg-tol", ["--two-sided-min", "0.01"],
     "two_sided_min (0.01) must exceed neg_tol (0.05)"),
    ("flag-given-a-value", ["--json", "yes"], "unexpected extra argument(s) (yes)"),
])  # fmt: skip

# -- umwelt reproduce -----------------------------------------------------------------------------

REPRODUCE = ["reproduce", "{out}", "--quick", "--quiet"]
CASES += _cases("reproduce", REPRODUCE, [
    ("scale-unknown", ["--scale", "tpu"], "scale must be one of cpu, gpu, got 'tpu'"),
    ("scale-empty", ["--scale", ""], "scale must be one of cpu, gpu, got ''"),
    ("scale-capitals", ["--scale", "CPU"], "got 'CPU'"),
    ("scale-gpu-without-cuda", ["--scale", "gpu"], "the gpu scale runs on cuda",
     pytest.mark.skipif(_cuda(), reason="CUDA is available: the gpu scale would run")),
    ("dataset-empty", ["--dataset", ""], "dataset must be a CIFAR-10 path, got ''"),
    ("dataset-unknown", ["--dataset", "imagenet"], "CIFAR-10 path 'imagenet' does not exist"),
    ("dataset-knob-text", ["--dataset", "teacher:n=abc"], "got 'abc'"),
    ("dataset-huge", ["--dataset", f"teacher:n={HUGE}"], "needs about"),
    ("dataset-a-text-file", ["--dataset", "{file}"], "afile' is not CIFAR-10 data"),
    ("dataset-a-broken-tar", ["--dataset", "{tar}"], "broken.tar.gz' is not CIFAR-10 data"),
    ("dataset-a-named-pipe", ["--dataset", "{pipe}"], "pipe' is neither a directory nor a file"),
    ("dataset-name-too-long", ["--dataset", "{long}"], "File name too long"),
    ("dataset-tiny-cifar", ["--dataset", "{cifar}"], "256"),  # subset 256 of 20 images
    ("seed-negative", ["--seed", "-1"], "seed must be an integer ≥ 0, got -1"),
    ("seed-text", ["--seed", "x"], "'--seed': got 'x'"),
    ("device-unknown", ["--device", "gpu"], "'gpu'"),
    ("device-empty", ["--device", ""], "''"),
    ("device-cuda-99", ["--device", "cuda:99"], "'cuda:99'"),
    ("option-unknown", ["--epochs", "3"], "No such option: --epochs"),
])  # fmt: skip
CASES += _cases("reproduce", ["reproduce", "{out}", "--quiet"], [
    ("dataset-not-given", [], "--dataset is required for the cpu scale: a CIFAR-10 path"),
    ("dataset-a-family", ["--dataset", "digits"], "must be a CIFAR-10 path"),
    ("dataset-missing", ["--dataset", "{missing}/cifar-10-python.tar.gz"], "does not exist"),
    ("dataset-an-empty-dir", ["--dataset", "{empty}"], "empty"),
    ("dataset-tiny-cifar-cpu", ["--dataset", "{cifar}"], "4000"),  # subset 4000 of 20 images
    ("quick-given-a-value", ["--quick", "yes"], "unexpected extra argument(s) (yes)"),
])  # fmt: skip
CASES += _cases("reproduce", ["reproduce", "--quick", "--quiet"], [
    ("out-missing", [], "Missing argument 'OUT'"),
    ("out-a-file", ["{file}"], "afile' is a file, not a directory"),
    ("out-under-a-file", ["{file}/rep"], "which is a file"),
    ("out-under-proc", ["/proc/umwelt-rep"], "cannot write in"),
    ("out-name-too-long", ["{long}"], "File name too long"),
    ("out-a-broken-link", ["{broken_link}"], "is a broken symbolic link"),
    ("out-a-link-loop", ["{loop}"], "Too many levels of symbolic links"),
    ("out-not-empty", ["{junk}"], "holds no reproduction (no reproduce.json)"),
    ("out-a-train-run", ["{train}"], "holds no reproduction (no reproduce.json)"),
    ("out-another-reproduction", ["{reproduction}"],
     "holds another reproduction: its seed = 7, this one's 0"),
    ("out-a-broken-settings-file", ["{bad_reproduction}"], "is not valid JSON"),
    ("out-two", ["{out}", "extra"], "unexpected extra argument(s) (extra)"),
])  # fmt: skip

# -- umwelt bench, and the group ------------------------------------------------------------------

CASES += _cases("bench", ["bench"], [
    ("unknown", ["speed"], "unknown benchmark 'speed'"),
    ("empty", [""], "unknown benchmark ''"),
    ("capitals", ["ALL"], "unknown benchmark 'ALL'"),
    ("quick-unknown", ["--quick", "nope"], "unknown benchmark 'nope'"),
    ("option-unknown", ["--fast"], "No such option: --fast"),
])  # fmt: skip
CASES += _cases("umwelt", [], [
    ("command-unknown", ["simulat"], "No such command 'simulat'"),
    ("option-unknown", ["--verbose"], "No such option: --verbose"),
])  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _command_built_once():
    """typer builds the click command anew on every ``invoke`` (70 ms: most of a case's time);
    the command is the same each time, so it is built once here."""
    import typer.testing

    patch = pytest.MonkeyPatch()
    patch.setattr(typer.testing, "_get_command", functools.cache(typer.testing._get_command))
    yield
    patch.undo()


# -- the places a case names ----------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


def _pipe(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _link(path: Path, to: Path) -> Path:
    path.symlink_to(to)
    return path


def _loop(a: Path, b: Path) -> Path:
    _link(a, b), _link(b, a)
    return a


def _cifar(root: Path) -> Path:
    """The official python batches, tiny: each of the six batches holds every class twice."""
    from umwelt.data import CIFAR10_CLASSES

    root.mkdir()
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {b"labels": list(range(10)) * 2, b"data": np.zeros((20, 3072), np.uint8)}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def _reproduction(path: Path, seed: int) -> Path:
    """A reproduction's directory as a first session leaves it: its settings (quick, ``seed``)."""
    from sim.reproduce import ReproduceConfig

    settings = ReproduceConfig(out=path, quick=True, seed=seed).validated().settings()
    path.mkdir()
    _write(path / "reproduce.json", json.dumps({"settings": settings, "dataset_sha256": None}))
    return path


def _npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array, allow_pickle=array.dtype == object)
    return path


#: what ``{name}`` in a case's arguments becomes: ``(root, request) -> path`` (made on demand)
PLACES = {
    "out": lambda root, rq: root / "out",  # never made: the command must not make it
    "missing": lambda root, rq: root / "missing",  # never made
    "long": lambda root, rq: root / ("n" * 300),  # a name longer than any file system's (255)
    "broken_link": lambda root, rq: _link(root / "broken", root / "nowhere"),
    "loop": lambda root, rq: _loop(root / "loop", root / "loop2"),
    "file": lambda root, rq: _write(root / "afile", "x\n"),
    "empty": lambda root, rq: _dir(root / "empty"),
    "junk": lambda root, rq: _write(_dir(root / "junk") / "notes.txt", "mine").parent,
    "sim": lambda root, rq: _copy(rq.getfixturevalue("sim_run"), root / "sim"),
    "train": lambda root, rq: _copy(rq.getfixturevalue("train_run"), root / "train"),
    "tar": lambda root, rq: _write(root / "broken.tar.gz", "not a tar archive\n"),
    "cifar": lambda root, rq: _cifar(root / "cifar-10-batches-py"),
    "pipe": lambda root, rq: _pipe(root / "pipe"),  # reading it would wait for a writer
    "pipe_npy": lambda root, rq: _pipe(root / "pipe.npy"),
    "npy_text": lambda root, rq: _write(root / "text.npy", "1,2,3\n"),
    "npy_object": lambda root, rq: _npy(root / "object.npy", np.array([{}, 2, 3], dtype=object)),
    "npy_nan": lambda root, rq: _npy(root / "nan.npy", np.array([np.nan, 1.0, 2.0])),
    "npy_five": lambda root, rq: _npy(root / "five.npy", np.ones(5)),
    "dir_npy": lambda root, rq: _dir(root / "dir.npy"),
    "reproduction": lambda root, rq: _reproduction(root / "reproduction", seed=7),
    "bad_reproduction": lambda root, rq: _write(_dir(root / "bad") / "reproduce.json", "{"
                                                ).parent,
    "graph_no_edges": lambda root, rq: _write(root / "g1.json", '{"nodes": []}'),
    "graph_bad_edge": lambda root, rq: _write(root / "g2.json", '{"edges": [[1, 2, 3]]}'),
    "graph_bad_weight": lambda root, rq: _write(
        root / "g3.json", '{"edges": [[["x", 0], [1, 0], "heavy"], [[1, 0], ["f", 0], 1.0]]}'
    ),
}  # fmt: skip


class _Places(dict):
    """``{name}`` → the path of that place under ``root``, made the first time it is named."""

    def __init__(self, root: Path, request):
        super().__init__()
        self.root, self.request = root, request

    def __missing__(self, name: str) -> str:
        self[name] = str(PLACES[name](self.root, self.request))
        return self[name]


def tree(path: Path) -> dict[str, bytes] | bytes | None:
    """Every file and directory under ``path`` with its bytes (a file: its bytes; nothing
    there, or nothing the system can look up: ``None``)."""
    try:
        if path.is_file():
            return path.read_bytes()
        if not path.is_dir():
            return None
    except OSError:  # a name too long
        return None
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(path.rglob("*"))}  # fmt: skip


# -- running a case -------------------------------------------------------------------------------


@contextlib.contextmanager
def _deadline(seconds: int):
    """Raise TimeoutError in the test's (main) thread after ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("args, needle", CASES)
def test_a_bad_value_is_one_line_exit_2_and_nothing_is_written(args, needle, tmp_path, request,
                                                              monkeypatch):  # fmt: skip
    places = _Places(tmp_path / "places", request)
    places.root.mkdir()
    args = [a.format_map(places) for a in args]
    cwd = tmp_path / "cwd"  # where a default runs/<kind>-<time> would appear
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = {name: tree(Path(p)) for name, p in places.items()}

    with _deadline(30):  # a pipe read by mistake would wait forever
        res = runner.invoke(app, args)

    lines = res.stderr.splitlines()
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert needle in lines[0], lines[0]
    assert res.stdout == "" and "Traceback" not in res.output, res.output
    assert {name: tree(Path(p)) for name, p in places.items()} == before  # nothing changed
    assert not Path(places["out"]).exists() and list(cwd.iterdir()) == []


def test_the_corpus_covers_every_command_and_option():
    """At least one case per option of every command (``--help``, ``--quiet``, ``--json`` and
    the figure switches take no value and cannot be bad), and well over 150 cases."""
    import typer

    group = typer.main.get_command(app)
    # (--blocks: a net with fewer than two weight layers, its bad case, cannot be built)
    switches = {"--help", "--quiet", "--json", "--figures", "--fresh", "--moments", "--blocks"}
    commands = ("simulate", "train", "exact", "circuits", "hessian", "plot", "phases", "bench",
                "reproduce")  # fmt: skip
    for name in commands:
        for param in group.commands[name].params:
            for opt in param.opts:
                if opt.startswith("--") and opt not in switches and not param.hidden:
                    assert (name, opt) in GIVEN, (name, opt)
    counts = Counter(p.id.partition("-")[0] for p in CASES)
    assert len(CASES) > 150 and len(counts) == 10, counts
