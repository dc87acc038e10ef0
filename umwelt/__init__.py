"""Umwelt: deep neural networks as stochastic graphical models.

Every layer is a conditional exponential-family law over binary neuronal gates at a
temperature ``T``; sampling the gates gives a stochastic network whose ``T → 0`` limit is the
ReLU network (S. W. M. Li, *Complexity from Adaptive-Symmetries Breaking*, THEORY.md).

``import umwelt`` loads the numpy engine only; the torch backend lives in :mod:`umwelt.nn`.
"""

from umwelt.errors import (
    ConfigError,
    DataError,
    EnumerationLimitError,
    NonFiniteError,
    ShapeError,
    UmweltError,
)
from umwelt.gates import (
    check_temperature,
    gate_entropy_bits,
    gate_log_prob,
    gate_probabilities,
    mean_field,
    relu_gates,
    sample_gates,
    scaled_logits,
)
from umwelt.network import GateSample, LayeredNetwork, parse_widths

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "EnumerationLimitError",
    "GateSample",
    "LayeredNetwork",
    "NonFiniteError",
    "ShapeError",
    "UmweltError",
    "__version__",
    "check_temperature",
    "gate_entropy_bits",
    "gate_log_prob",
    "gate_probabilities",
    "mean_field",
    "parse_widths",
    "relu_gates",
    "sample_gates",
    "scaled_logits",
]
