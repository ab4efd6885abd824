"""Device and precision policy of the model host.

- device: ``VERTICALS_DEVICE`` (``settings().device``) (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``);
  auto picks cuda > mps > cpu. CUDA is touched only when a model is loaded,
  never at import time, so a forking worker can import this module safely.
- precision: ``VERTICALS_PRECISION`` (``settings().precision``) (``auto``, ``fp32``, ``bf16``, ``fp16``).
  auto: bf16 weights on a GPU that supports it, fp16 on other GPUs; on a CPU
  with native bf16 (AVX512-BF16 or AMX) bf16 *autocast* is proposed and kept
  only if a parity check against fp32 passes (see ``LoadedModel``); fp32 on
  other CPUs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from verticals.config import settings

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """How a model runs: the dtype of its weights, and an optional autocast dtype."""

    weights: torch.dtype
    autocast: torch.dtype | None = None
    needs_parity_check: bool = False

    def label(self) -> str:
        if self.autocast is not None:
            return f"{_name(self.weights)}+autocast-{_name(self.autocast)}"
        return _name(self.weights)


def _name(dtype: torch.dtype) -> str:
    return {v: k for k, v in PRECISIONS.items()}.get(dtype, str(dtype))


def pick_device(preference: str | None = None) -> torch.device:
    preference = (preference or settings().device).strip().lower()
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 natively (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def pick_precision(device: torch.device, preference: str | None = None, *, generative: bool = False) -> Precision:
    preference = (preference or settings().precision).strip().lower()
    if preference != "auto":
        if preference not in PRECISIONS:
            raise ValueError(f"unknown precision {preference!r}: use one of auto, {', '.join(PRECISIONS)}")
        dtype = PRECISIONS[preference]
        if device.type == "cpu" and dtype != torch.float32:
            return Precision(torch.float32, autocast=dtype)
        return Precision(dtype)
    if device.type == "cuda":
        return Precision(torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    if device.type == "mps":
        return Precision(torch.float16)
    if not generative and cpu_has_native_bf16():
        return Precision(torch.float32, autocast=torch.bfloat16, needs_parity_check=True)
    return Precision(torch.float32)
