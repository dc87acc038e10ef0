import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cases import TINY_WIDTHS, tiny_network  # noqa: E402


@pytest.fixture(params=sorted(TINY_WIDTHS))
def tiny_net(request):
    """Each standard tiny network in turn."""
    return tiny_network(request.param)
