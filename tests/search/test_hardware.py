"""What the machine offers: native bfloat16 as oneDNN may use it, and the kinds of machine a
preset's ``machine`` section is chosen by."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo32.search import hardware


@pytest.fixture
def fresh(monkeypatch):
    """A CPU machine as detected (no forced kind, no GPU), cpu_has_bf16 read anew."""
    monkeypatch.delenv("HPO32_MACHINE", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    hardware.cpu_has_bf16.cache_clear()
    yield
    hardware.cpu_has_bf16.cache_clear()


def _flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_native_bf16_is_read_from_the_cpu_flags(fresh):
    native = bool(_flags() & {"avx512_bf16", "amx_bf16"})
    assert hardware.cpu_has_bf16() is native
    assert hardware.machine_kinds() == (("cpu-bf16", "cpu") if native else ("cpu",))


@pytest.mark.parametrize("variable", ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"])
def test_a_onednn_cap_below_bf16_makes_the_cpu_one_without_it(fresh, monkeypatch, variable):
    monkeypatch.setenv(variable, "avx2")
    assert hardware.cpu_has_bf16() is False
    assert hardware.machine_kinds() == ("cpu",)
    hardware.cpu_has_bf16.cache_clear()
    monkeypatch.setenv(variable, "AVX512_CORE_BF16")  # a cap that keeps it changes nothing
    assert hardware.cpu_has_bf16() is bool(_flags() & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize(
    ("forced", "kinds"),
    [("gpu", ("gpu",)), ("cpu-bf16", ("cpu-bf16", "cpu")), ("cpu", ("cpu",))],
)
def test_hpo32_machine_forces_the_kind(fresh, monkeypatch, forced, kinds):
    monkeypatch.setenv("HPO32_MACHINE", forced)
    assert hardware.machine_kinds() == kinds
    assert hardware.describe().startswith(f"{forced} machine: ")


@pytest.mark.parametrize(
    ("listed", "device_files", "seen"),
    [
        ((), (), False),
        (("0000:00:05.0",), (), True),  # the driver lists one
        ((), ("nvidiactl", "nvidia-uvm"), False),  # the driver's control files alone
        ((), ("nvidiactl", "nvidia0"), True),  # a container shows the device file only
    ],
)
def test_a_gpu_is_seen_in_the_driver_list_or_its_device_file(
    monkeypatch, tmp_path, listed, device_files, seen
):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    proc, dev = tmp_path / "proc", tmp_path / "dev"
    proc.mkdir()
    dev.mkdir()
    for name in listed:
        (proc / name).mkdir()
    for name in device_files:
        (dev / name).touch()
    monkeypatch.setattr(hardware, "NVIDIA_PROC", proc)
    monkeypatch.setattr(hardware, "NVIDIA_DEV", dev)
    assert hardware.gpu_visible() is seen
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # hidden, whatever is there
    assert hardware.gpu_visible() is False
