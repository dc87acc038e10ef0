"""``umwelt plot RUN``: (re)draw the figures of a run directory into ``RUN/figures``.

Which figures a run gets, and their file names, is :mod:`sim.figures`' business; this driver
opens the run (:class:`sim.runs.Run`) and asks for all of them.
"""

from __future__ import annotations

from pathlib import Path

from sim.figures import make_figures
from sim.runs import Run

__all__ = ["run"]


def run(run_dir: Path | str) -> list[Path]:
    """Draw every figure the run's files allow; the paths written.

    Raises:
        ConfigError: when ``run_dir`` is not a run directory of umwelt train or umwelt
            simulate, or one of its files is unreadable.
    """
    return make_figures(Run.open(run_dir))
