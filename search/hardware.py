"""What this machine offers for training: GPUs, CPU cores, native bfloat16.

Read without importing an ML framework, so ``hpo32 presets`` and spec loading stay quick.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ["cpu_count", "cpu_has_bf16", "describe", "gpu_visible", "machine_kind"]


@functools.cache
def cpu_has_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX), which oneDNN uses.
    Read once per process (every trial asks)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def cpu_count() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is there and not hidden by ``CUDA_VISIBLE_DEVICES``."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def machine_kind() -> str:
    """``gpu`` or ``cpu``: the key of a preset's ``machine`` section that applies here.
    ``$HPO32_MACHINE`` overrides what is detected."""
    forced = os.environ.get("HPO32_MACHINE")
    if forced in ("gpu", "cpu"):
        return forced
    return "gpu" if gpu_visible() else "cpu"


def describe() -> str:
    """One line: the machine kind, cores and bfloat16 support."""
    bf16 = "native bfloat16" if cpu_has_bf16() else "no native bfloat16"
    return f"{machine_kind()} machine: {cpu_count()} CPU cores, {bf16}"
