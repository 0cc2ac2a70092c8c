"""What this machine offers for training: GPUs, CPU cores, native bfloat16, the Keras
backends installed.

Read without importing an ML framework, so ``hpo32 presets`` and spec loading stay quick.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path

__all__ = [
    "BACKENDS",
    "BackendError",
    "active_backend",
    "cpu_count",
    "cpu_has_bf16",
    "describe",
    "gpu_visible",
    "MACHINE_KINDS",
    "machine_kinds",
    "use_backend",
]

#: The Keras 3 backends a study trains on (``tensorflow`` first: the default).
BACKENDS = ("tensorflow", "jax", "torch")
#: Each backend's library (the module Keras imports), its name in words, and the extra
#: that installs it.
_BACKEND_LIBRARY = {
    "tensorflow": ("tensorflow", "TensorFlow", "'hpo32[cpu]' (or 'hpo32[gpu]' with CUDA)"),
    "jax": ("jax", "JAX", "'hpo32[jax]'"),
    "torch": ("torch", "PyTorch", "'hpo32[torch]'"),
}


class BackendError(RuntimeError):
    """A backend that cannot run in this process (one sentence: what to install or set)."""


def active_backend() -> str:
    """The backend Keras uses (or will use once imported) in this process: Keras' own when
    it is loaded, else ``$KERAS_BACKEND``, else ``tensorflow``."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return str(keras.backend.backend())
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def use_backend(name: str) -> None:
    """Makes ``name`` this process's Keras backend: sets ``$KERAS_BACKEND`` (the workers a
    search starts inherit it) before anything imports Keras, which fixes its backend at
    import. Imports no backend's library.

    Raises:
        BackendError: ``name``'s library is not installed, or Keras is already loaded with
            another backend.
        ValueError: not one of :data:`BACKENDS`.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}'; use one of {', '.join(BACKENDS)}.")
    module, words, extra = _BACKEND_LIBRARY[name]
    if sys.modules.get(module) is None and importlib.util.find_spec(module) is None:
        raise BackendError(f"the {name} backend needs {words}: pip install {extra}")
    loaded = sys.modules.get("keras")
    if loaded is not None and hasattr(loaded, "backend") and loaded.backend.backend() != name:
        raise BackendError(
            f"Keras is already loaded with the {loaded.backend.backend()} backend in this "
            f"process; run hpo32 in a new one with KERAS_BACKEND={name}."
        )
    os.environ["KERAS_BACKEND"] = name


#: oneDNN instruction-set caps (``ONEDNN_MAX_CPU_ISA``) under which it has no bfloat16
#: kernels: a CPU capped so trains as one without native bfloat16.
_ISA_CAPS_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}
)


@functools.cache
def cpu_has_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX) and oneDNN, which
    runs the convolutions and matrix products, may use it: ``ONEDNN_MAX_CPU_ISA=AVX2`` (or
    another cap below AVX512_CORE_BF16) makes it False. Read once per process (every trial
    asks)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    if cap.strip().upper() in _ISA_CAPS_WITHOUT_BF16:
        return False
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


#: Where the NVIDIA driver lists its GPUs, and where their device files are (a container or
#: virtual machine may show one and not the other).
NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")
NVIDIA_DEV = Path("/dev")


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is there and not hidden by ``CUDA_VISIBLE_DEVICES``: the
    driver lists one, or a device file ``/dev/nvidiaN`` is there. Asks no framework."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        return False
    if NVIDIA_PROC.is_dir() and any(NVIDIA_PROC.iterdir()):
        return True
    return any(p.name[6:].isdigit() for p in NVIDIA_DEV.glob("nvidia[0-9]*"))


#: The kinds of machine a preset's ``machine`` section may name, most specific first within
#: each: a GPU; a CPU with native bfloat16 (AVX512-BF16 or AMX, where mixed precision pays);
#: any CPU (float32).
MACHINE_KINDS = ("gpu", "cpu-bf16", "cpu")


def machine_kinds() -> tuple[str, ...]:
    """The keys of a preset's ``machine`` section that fit here, most specific first:
    ``("gpu",)``, ``("cpu-bf16", "cpu")`` or ``("cpu",)``; a section takes the first it has.
    ``$HPO32_MACHINE`` (one of :data:`MACHINE_KINDS`) overrides what is detected."""
    forced = os.environ.get("HPO32_MACHINE")
    if forced not in MACHINE_KINDS:
        forced = "gpu" if gpu_visible() else "cpu-bf16" if cpu_has_bf16() else "cpu"
    return ("cpu-bf16", "cpu") if forced == "cpu-bf16" else (forced,)


def describe() -> str:
    """One line: the machine kind, cores and bfloat16 support."""
    bf16 = "native bfloat16" if cpu_has_bf16() else "no native bfloat16"
    return f"{machine_kinds()[0]} machine: {cpu_count()} CPU cores, {bf16}"
