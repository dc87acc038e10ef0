import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import cases  # noqa: E402
from cases import TINY_WIDTHS, TORCH_CASES, tiny_network  # noqa: E402


@pytest.fixture(params=sorted(TINY_WIDTHS))
def tiny_net(request):
    """Each standard tiny network in turn."""
    return tiny_network(request.param)


@pytest.fixture(params=sorted(TORCH_CASES))
def torch_case(request):
    """Each standard torch case in turn, built with seed 0 (a ``cases.TorchCase``)."""
    return cases.torch_case(request.param)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny torch products on one thread: two threads only wait on each other on a shared
    machine. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
