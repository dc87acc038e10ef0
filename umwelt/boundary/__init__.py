r"""Where the phase boundary lies: the capacity at which half the runs converge (THEORY.md §5).

The paper's headline claim is that training converges when a net's capacity exceeds the data's
complexity. A sweep trains nets of :math:`N` parameters on data of complexity :math:`n` (the
number of training examples, or a label-noise fraction), several seeds each, and records
whether each run *converged* (zero training risk, :mod:`umwelt.phases`). For each value of the
complexity axis this package estimates the **threshold capacity** :math:`N^*` at which a run
converges with probability ``level`` (½ by default) — the median effective dose of a
dose-response experiment (Finney, *Probit Analysis*, 1971) with :math:`\log N` as the dose —
with a bootstrap confidence interval, and, when the complexity axis is a size, the exponent
:math:`a` of the power law :math:`N^* \propto n^a` with its interval.

The estimator, one concept per module (each explains its part, with the references):

* :mod:`~umwelt.boundary._logistic`: the law
  :math:`P(\text{converged} \mid N) = \sigma(b_0 + b_1 \log N)` fitted by maximum likelihood
  to the runs of one complexity value (:func:`fit_logistic`, :class:`LogisticFit`), and what is
  known where the estimate does not exist (separated or degenerate outcomes);
* :mod:`~umwelt.boundary._bootstrap`: the pairs bootstrap's replicates, each a point or an
  interval of thresholds, and the order statistics that make the interval;
* :mod:`~umwelt.boundary._threshold`: :math:`N^*` of one complexity value with its interval
  (:func:`capacity_threshold`, :class:`Threshold`), and of each, the boundary
  (:func:`boundary`, :func:`boundary_from_rows`, :class:`BoundaryPoint`);
* :mod:`~umwelt.boundary._power_law`: the exponent :math:`a` of :math:`N^* \propto n^a`, with
  its interval from joint replicates (:func:`power_law`, :class:`PowerLaw`);
* :mod:`~umwelt.boundary._common`: the statuses (:data:`STATUSES`), the input checks, the JSON
  values of the results.

**Coverage**, measured on synthetic sweeps drawn from
:math:`P = \sigma(k(\log N - \log N^*))`, nominal 90 %, 200 bootstrap replicates. The
threshold, 8 capacities a factor 2 apart, 1000 sweeps each: 0.90 (:math:`k = 1`, 5 or 10
seeds), 0.92 (:math:`k = 2`, 5 seeds), 0.97 (:math:`k = 3`), 0.995 (:math:`k = 8`, 4 seeds,
96 % of the data sets separated). The exponent, :math:`N^* = 4 n^{0.8}` at 5 sizes a factor 2
apart on 10 capacities a factor 2 apart: 0.91 (:math:`k = 1.5`, 4 seeds, 500 sweeps), 0.91
(:math:`k = 3`), 0.997 (:math:`k = 8`, 3 seeds, 300 sweeps). ``tests/test_boundary.py``
checks the threshold and the exponent with 200 sweeps each.

A closed form: with two capacities, the fit reproduces the converged fractions there, so for
1 of 4 runs converged at :math:`N = 10` and 3 of 4 at :math:`N = 1000`,
:math:`b_1 = 2\log 3 / \log 100` and :math:`N^* = 100`:

>>> import math
>>> import numpy as np
>>> fit = fit_logistic(np.log([10.0] * 4 + [1000.0] * 4), [1, 0, 0, 0, 1, 1, 1, 0])
>>> fit.status, round(fit.slope / (2 * math.log(3) / math.log(100)), 6)
('fit', 1.0)
>>> t = capacity_threshold([10.0] * 4 + [1000.0] * 4, [1, 0, 0, 0, 1, 1, 1, 0], seed=0)
>>> round(t.estimate, 6), t.status
(100.0, 'fit')
>>> t = capacity_threshold([10, 20, 40, 80] * 3, [0, 0, 1, 1] * 3, seed=0)  # separated
>>> t.status, t.estimate == math.sqrt(20 * 40), t.ci_low, t.ci_high
('separated', True, 20.0, 40.0)

``numpy`` and ``scipy`` only.
"""

from umwelt.boundary._bootstrap import _quantile_bounds as _quantile_bounds  # for the tests
from umwelt.boundary._common import STATUSES as STATUSES
from umwelt.boundary._logistic import LogisticFit as LogisticFit
from umwelt.boundary._logistic import _newton as _newton  # for the tests
from umwelt.boundary._logistic import fit_logistic as fit_logistic
from umwelt.boundary._power_law import PowerLaw as PowerLaw
from umwelt.boundary._power_law import power_law as power_law
from umwelt.boundary._threshold import BoundaryPoint as BoundaryPoint
from umwelt.boundary._threshold import Threshold as Threshold
from umwelt.boundary._threshold import boundary as boundary
from umwelt.boundary._threshold import boundary_from_rows as boundary_from_rows
from umwelt.boundary._threshold import capacity_threshold as capacity_threshold

__all__ = [
    "STATUSES",
    "BoundaryPoint",
    "LogisticFit",
    "PowerLaw",
    "Threshold",
    "boundary",
    "boundary_from_rows",
    "capacity_threshold",
    "fit_logistic",
    "power_law",
]
