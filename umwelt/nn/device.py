"""Choosing the torch device and dtype from user strings, with clear errors."""

from __future__ import annotations

import torch

from umwelt.errors import ConfigError

__all__ = ["DTYPES", "resolve_device", "resolve_dtype"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``... as a :class:`torch.device` that exists here.

    Raises:
        ConfigError: for an unknown device string or an unavailable CUDA device.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA devices exist"
            )
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {name!r}; use cpu, cuda or cuda:N")
    return device


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"float32"`` or ``"float64"`` as a torch dtype (ConfigError otherwise)."""
    if isinstance(name, torch.dtype):
        if name in DTYPES.values():
            return name
    elif name in DTYPES:
        return DTYPES[name]
    raise ConfigError(f"unknown dtype {name!r}; use {' or '.join(DTYPES)}")
