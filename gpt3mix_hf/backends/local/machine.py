"""The machine a local model runs on and the dtype it runs in: in bfloat16, generated rows depend on both."""

from __future__ import annotations

import os

import torch


def cpu_has_bf16_matmul(flags: set[str] | None = None) -> bool:
    """Whether the CPU multiplies bf16 matrices natively (AVX512_BF16 or AMX-BF16), where bf16 weights run
    several times faster than fp32. Without either, bf16 is emulated and slower. `flags` defaults to this
    machine's (`/proc/cpuinfo`, else what torch detects)."""
    if flags is None:
        flags = _cpu_flags()
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def machine_kind(device: str | torch.device = "cpu") -> str:
    """The processor or GPU a model runs on, e.g. `"cpu: AMD EPYC; bf16 matmul emulated"`. Rows generated in
    bfloat16 are the same for the same settings on the same kind of machine only: other kernels round
    otherwise, and a rounded logit can change a sampled token."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    name = _cpuinfo_field("model name") or "unknown processor"
    return f"{device.type}: {name}; bf16 matmul {'native' if cpu_has_bf16_matmul() else 'emulated'}"


def _cpuinfo_field(key: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_flags() -> set[str]:
    flags = _cpuinfo_field("flags")
    if flags is not None:
        return set(flags.split())
    # Not Linux: ask torch's own CPU detection (private helpers, hence the guards).
    flags = set()
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        flags.add("avx512_bf16")
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        flags.add("amx_bf16")
    return flags


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# Set to a dtype name, `"auto"` resolves to it on any machine: e.g. GPT3MIX_AUTO_DTYPE=bfloat16 runs the test
# suite as a machine with native bf16 (AMX, a GPU) sees it, emulated and slower where the CPU lacks it.
AUTO_DTYPE_ENV = "GPT3MIX_AUTO_DTYPE"


def resolve_device(device: str | None = None) -> str:
    """`device`, or where a model goes when none is named: `cuda` when there is a GPU, else `cpu`."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """The torch dtype for `dtype`: `"auto"` is bfloat16 on a GPU that supports it and on a CPU with native
    bf16 matrix instructions (`cpu_has_bf16_matmul`), float32 elsewhere; `$GPT3MIX_AUTO_DTYPE`, when set,
    overrides that choice on any machine.

    Example:

    >>> resolve_dtype("auto", "cpu")  # torch.float32 on a CPU without AVX512_BF16 / AMX
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto" and os.environ.get(AUTO_DTYPE_ENV):
        forced = os.environ[AUTO_DTYPE_ENV]
        if forced not in _DTYPES:
            raise ValueError(f"${AUTO_DTYPE_ENV} must be one of {sorted(_DTYPES)} (or unset), got {forced!r}.")
        return _DTYPES[forced]
    if dtype == "auto":
        device = torch.device(device)
        if device.type == "cuda":
            fast = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        else:
            fast = device.type == "cpu" and cpu_has_bf16_matmul()
        return torch.bfloat16 if fast else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}.")
    return _DTYPES[dtype]
