"""The option corpus of the analyses of a net or a run: ``umwelt circuits`` (an MLP, a VGG, a
checkpoint, a graph file, the moments through training) and ``umwelt hessian`` (of a simulate
run and of a train run) (``sim/cli/analyses.py``). The contract: ``test_hostile_options.py``.
"""

from __future__ import annotations

import pytest
from option_cases import HUGE, assert_refused, cases

pytestmark = pytest.mark.usefixtures("command_built_once")  # tests/hostile/conftest.py

CIRCUITS = ["circuits", "--samples", "10", "--checks", "2", "--inputs", "1", "--json",
            "--out", "{out}"]  # fmt: skip
MLP = [*CIRCUITS, "--widths", "3,2,1"]
VGG = [*CIRCUITS, "--model", "vgg11"]
HESSIAN = ["hessian", "{sim}", "--quiet", "--no-figures", "--lanczos-steps", "3", "--extreme-steps",
           "3", "--start-vectors", "2", "--entries", "0", "--grid-points", "11"]  # fmt: skip
HESSIAN_TRAIN = ["hessian", "{train}", *HESSIAN[2:]]

# -- umwelt circuits ------------------------------------------------------------------------------

CASES = cases("circuits", MLP, [
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
CASES += cases("circuits", VGG, [
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
CASES += cases("circuits", CIRCUITS, [
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
CASES += cases("circuits", [*CIRCUITS, "--run", "{train}"], [
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
CASES += cases("circuits", CIRCUITS, [
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

CASES += cases("hessian", ["hessian"], [
    ("run-missing", ["{missing}"], "missing"),
    ("run-a-file", ["{file}"], "afile' is a file, not a run directory"),
    ("run-name-too-long", ["{long}"], "File name too long"),
    ("run-a-link-loop", ["{loop}"], "Too many levels of symbolic links"),
    ("run-an-empty-dir", ["{empty}"], "empty"),
    ("run-not-a-run", ["{junk}"], "junk"),
    ("run-not-given", [], "Missing argument 'RUN'"),
])  # fmt: skip
CASES += cases("hessian", HESSIAN, [
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
CASES += cases("hessian", HESSIAN_TRAIN, [
    ("train-run-net-relu", ["--net", "relu"], "relu"),
    ("train-run-epochs-absent", ["--epochs", "0,3"], "epoch 3 is not in the run"),
    ("train-run-examples-beyond", ["--examples", HUGE], HUGE),
])  # fmt: skip
# a progress bar, where a terminal shows one
CASES += cases("hessian", [a for a in HESSIAN if a != "--quiet"], [
    ("loud-lanczos-steps-beyond", ["--lanczos-steps", "25"], "--lanczos-steps 25 exceeds"),
    ("loud-grid-points-huge", ["--grid-points", HUGE], "needs about"),
])  # fmt: skip


@pytest.mark.parametrize("args, needle", CASES)
def test_a_bad_value_is_one_line_exit_2_and_nothing_is_written(args, needle, tmp_path, request,
                                                              monkeypatch):  # fmt: skip
    assert_refused(args, needle, tmp_path, request, monkeypatch)
