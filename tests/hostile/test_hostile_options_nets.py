"""The option corpus of the commands that build a net and run it: ``umwelt simulate`` and
``umwelt exact`` (``sim/cli/nets.py``). The contract: ``test_hostile_options.py``."""

from __future__ import annotations

import pytest
from option_cases import DATA, HUGE, assert_refused, cases

pytestmark = pytest.mark.usefixtures("command_built_once")  # tests/hostile/conftest.py

SIMULATE = ["simulate", "--epochs", "1", "--hidden", "3", "--samples", "2", "--dataset", DATA,
            "--quiet", "--out", "{out}"]  # fmt: skip
EXACT = ["exact", "--widths", "3,2,1", "--inputs", "1", "--samples", "10", "--json"]

# -- umwelt simulate ------------------------------------------------------------------------------

CASES = cases("simulate", SIMULATE, [
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

# -- umwelt exact ---------------------------------------------------------------------------------

CASES += cases("exact", EXACT, [
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


@pytest.mark.parametrize("args, needle", CASES)
def test_a_bad_value_is_one_line_exit_2_and_nothing_is_written(args, needle, tmp_path, request,
                                                              monkeypatch):  # fmt: skip
    assert_refused(args, needle, tmp_path, request, monkeypatch)
