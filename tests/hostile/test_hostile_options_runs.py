"""The option corpus of the commands that make or read a run directory: ``umwelt train``
(new, on CIFAR-10 files, with a progress bar, resumed), ``umwelt plot`` and ``umwelt phases``
(``sim/cli/runs.py``). The contract: ``test_hostile_options.py``."""

from __future__ import annotations

import pytest
from option_cases import DATA, HUGE, assert_refused, cases

pytestmark = pytest.mark.usefixtures("command_built_once")  # tests/hostile/conftest.py

TRAIN = ["train", "--model", "mlp:3", "--dataset", DATA, "--epochs", "1", "--batch-size", "8",
         "--quiet", "--no-figures", "--out", "{out}"]  # fmt: skip
RESUME = ["train", "--resume", "{train}", "--quiet", "--no-figures"]
HS = ["--hessian-at", "1", "--hessian-settings"]
PHASES = ["phases", "{sim}", "--json"]

# -- umwelt train ---------------------------------------------------------------------------------

CASES = cases("train", TRAIN, [
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
CASES += cases("train", [*TRAIN, "--dataset", "{cifar}"], [
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
CASES += cases("train", LOUD, [
    ("loud-dataset-a-broken-tar", ["--dataset", "{tar}"], "broken.tar.gz' is not CIFAR-10 data"),
    ("loud-dataset-a-named-pipe", ["--dataset", "{pipe}"],
     "pipe' is neither a directory nor a file"),
    ("loud-classes-unknown", ["--dataset", "{cifar}", "--classes", "cat,unicorn"], "unicorn"),
])  # fmt: skip
CASES += cases("train", ["train", "--model", "mlp:3", "--out", "{out}", "--quiet"], [
    ("dataset-not-given", [], "--dataset is required"),
])  # fmt: skip
CASES += cases("train", RESUME, [
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

# -- umwelt plot ----------------------------------------------------------------------------------

CASES += cases("plot", ["plot"], [
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

CASES += cases("phases", ["phases"], [
    ("run-missing", ["{missing}"], "missing"),
    ("run-a-file", ["{file}"], "afile' is a file, not a run directory"),
    ("run-name-too-long", ["{long}"], "File name too long"),
    ("run-a-link-loop", ["{loop}"], "Too many levels of symbolic links"),
    ("run-an-empty-dir", ["{empty}"], "empty"),
    ("run-not-a-run", ["{junk}"], "junk"),
])  # fmt: skip
CASES += cases("phases", PHASES, [
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


@pytest.mark.parametrize("args, needle", CASES)
def test_a_bad_value_is_one_line_exit_2_and_nothing_is_written(args, needle, tmp_path, request,
                                                              monkeypatch):  # fmt: skip
    assert_refused(args, needle, tmp_path, request, monkeypatch)
