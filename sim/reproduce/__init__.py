r"""``umwelt reproduce OUT --scale cpu|gpu [--quick]``: the paper's experiment at a scale, and
every quantitative claim of the paper checked against it in one report (THEORY.md §4–6).

It trains the paper's net as an ordinary ``umwelt train`` run directory (``OUT/train``: vgg12,
hinge loss, ReLU gates, two CIFAR-10 classes; observed, and its Hessian analysed, at the
paper's epochs up to the run's), samples the circuit symmetry at initialization
(``OUT/circuits``: ψ, Ω⁽¹⁾, Ω⁽²⁾, eq. 14, fig. 3b), decides one claim of the paper per row
from those files (:mod:`~sim.reproduce.claims`: a number with a 95 % interval, and a verdict
``holds``, ``does not hold`` or ``not measurable at this scale`` with its reason), and writes
``OUT/REPORT.md`` and one self-contained ``OUT/report.html`` (:mod:`~sim.reproduce.report`)
with every setting, seed, version and the dataset's SHA-256.

The directory::

    reproduce.json       the settings (a rerun must give the same), dataset SHA-256, versions
    train/               the umwelt train run (umwelt phases, plot, hessian work on it)
    circuits/            circuits.json and circuit_histograms.png (fig. 3b)
    figures/             the figures the claims show (copies)
    REPORT.md report.html

Running the same command again continues an interrupted reproduction: the train run resumes
from its last checkpoint, finished stages are not redone, the report is written anew. An
``OUT`` of other settings is refused. The package: :mod:`~sim.reproduce.config` (the settings
and the scales), :mod:`~sim.reproduce.runner` (:func:`prepare`, :func:`run`),
:mod:`~sim.reproduce.claims` (the claims and their rule), :mod:`~sim.reproduce.report`.

Sitting above the drivers (it starts a train run, its Hessian analyses, the circuits and the
phases), it may import them, as :mod:`sim.api` and :mod:`sim.sweep` do.
"""

from sim.reproduce.claims import CLAIMS, Evidence, evaluate
from sim.reproduce.config import PRESETS, QUICK, SCALES, ReproduceConfig
from sim.reproduce.report import VERDICTS, Claim, write_report
from sim.reproduce.runner import ReproducePlan, ReproduceResult, prepare, run

__all__ = [
    "CLAIMS",
    "PRESETS",
    "QUICK",
    "SCALES",
    "VERDICTS",
    "Claim",
    "Evidence",
    "ReproduceConfig",
    "ReproducePlan",
    "ReproduceResult",
    "evaluate",
    "prepare",
    "run",
    "write_report",
]
