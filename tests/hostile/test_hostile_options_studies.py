"""The option corpus of ``umwelt reproduce`` (``sim/cli/studies.py``): the scale, the data, the
reproduction directory. The contract: ``test_hostile_options.py``."""

from __future__ import annotations

import pytest
from option_cases import HUGE, assert_refused, cases

pytestmark = pytest.mark.usefixtures("command_built_once")  # tests/hostile/conftest.py


def _cuda() -> bool:
    """Whether this machine has a GPU (the gpu scale would then run, not fail)."""
    import torch

    return torch.cuda.is_available()


# -- umwelt reproduce -----------------------------------------------------------------------------

REPRODUCE = ["reproduce", "{out}", "--quick", "--quiet"]
CASES = cases("reproduce", REPRODUCE, [
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
CASES += cases("reproduce", ["reproduce", "{out}", "--quiet"], [
    ("dataset-not-given", [], "--dataset is required for the cpu scale: a CIFAR-10 path"),
    ("dataset-a-family", ["--dataset", "digits"], "must be a CIFAR-10 path"),
    ("dataset-missing", ["--dataset", "{missing}/cifar-10-python.tar.gz"], "does not exist"),
    ("dataset-an-empty-dir", ["--dataset", "{empty}"], "empty"),
    ("dataset-tiny-cifar-cpu", ["--dataset", "{cifar}"], "4000"),  # subset 4000 of 20 images
    ("quick-given-a-value", ["--quick", "yes"], "unexpected extra argument(s) (yes)"),
])  # fmt: skip
CASES += cases("reproduce", ["reproduce", "--quick", "--quiet"], [
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


@pytest.mark.parametrize("args, needle", CASES)
def test_a_bad_value_is_one_line_exit_2_and_nothing_is_written(args, needle, tmp_path, request,
                                                              monkeypatch):  # fmt: skip
    assert_refused(args, needle, tmp_path, request, monkeypatch)
