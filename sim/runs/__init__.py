r"""The one owner of run directories: open, read, write, rebuild a model.

Every command that leaves results on disk (``umwelt simulate``, ``umwelt train``, ``umwelt
hessian``) writes a *run directory*; every reader (``umwelt hessian``, ``circuits
--checkpoint``, ``plot``, the benchmarks, an exploratory script) reads one through this
package, never by parsing its files itself:

* :class:`Run` (:mod:`~sim.runs.run`) — ``Run.open(path)``: the kind, the typed config, the
  metric rows, the summary, observations, checkpoints by epoch, the data and the model at any
  checkpoint rebuilt as the run built them, the Hessian analyses;
* :mod:`~sim.runs.train`, :mod:`~sim.runs.simulate` — each kind's Config (the schema of its
  ``config.json``) and the one function that rebuilds its data and its model;
* :mod:`~sim.runs.hessian` — the settings of a Hessian analysis and its directory's layout;
* :mod:`~sim.runs.io` — atomic writes, JSON and JSON lines, library versions, checks of a new
  output directory; :mod:`~sim.runs.codec` — a Config to and from JSON (``inf`` once).

>>> from sim.runs import Run, TrainConfig
>>> TrainConfig.from_json({"model": "mlp:8", "temperature": "inf"}).temperature
inf
"""

from sim.runs.codec import JsonConfig
from sim.runs.hessian import SETTINGS, HessianSettings, parse_settings
from sim.runs.io import (
    atomic_write,
    check_out_dir,
    default_run_dir,
    read_jsonl,
    to_jsonable,
    versions,
    write_json,
    write_jsonl,
)
from sim.runs.run import KINDS, Run
from sim.runs.simulate import SimulateConfig
from sim.runs.train import PAPER_OBSERVE_AT, TrainConfig

__all__ = [
    "KINDS",
    "PAPER_OBSERVE_AT",
    "SETTINGS",
    "HessianSettings",
    "JsonConfig",
    "Run",
    "SimulateConfig",
    "TrainConfig",
    "atomic_write",
    "check_out_dir",
    "default_run_dir",
    "parse_settings",
    "read_jsonl",
    "to_jsonable",
    "versions",
    "write_json",
    "write_jsonl",
]
