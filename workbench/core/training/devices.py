"""The devices this machine can train on, and turning a user's choice into a torch device."""

from __future__ import annotations

import torch

from workbench.core.errors import ConfigError


def available_devices() -> list[tuple[str, str]]:
    """``(id, description)`` for each device here: the CPU, each CUDA GPU by name and memory, MPS."""
    devices = [("cpu", "CPU")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            memory = properties.total_memory / 2**30
            devices.append((f"cuda:{index}", f"{properties.name} ({memory:.0f} GiB)"))
    if torch.backends.mps.is_available():
        devices.append(("mps", "Apple GPU (MPS)"))
    return devices


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks the first GPU there is, else the CPU; anything absent is a :class:`ConfigError`."""
    ids = [device_id for device_id, _ in available_devices()]
    if choice == "auto":
        gpus = [device_id for device_id in ids if device_id != "cpu"]
        return torch.device(gpus[0] if gpus else "cpu")
    wanted = "cuda:0" if choice == "cuda" else choice
    if wanted not in ids:
        listing = ", ".join(f"{device_id} ({description})" for device_id, description in available_devices())
        raise ConfigError(
            f"There is no device '{choice}' on this machine. Devices here: {listing}; "
            f"or 'auto' to take the first GPU if there is one."
        )
    return torch.device(wanted)


def autocast_dtype(choice: str, device: torch.device) -> torch.dtype | None:
    """The dtype the forward passes run in under autocast for ``mixed_precision=choice`` on ``device``, or
    None for full float32.

    ``auto`` means bfloat16 on a CUDA GPU that computes in it natively (Ampere and later) and float32
    elsewhere; ``on`` asks for bfloat16 on a CUDA GPU or the CPU, and is a :class:`ConfigError` where the
    device cannot do it.
    """
    if choice == "off":
        return None
    if device.type == "cuda":
        if _cuda_bf16(device):
            return torch.bfloat16
        if choice == "on":
            raise ConfigError(
                f"Mixed precision needs bfloat16, which {torch.cuda.get_device_name(device)} does "
                f"not compute natively: use --mixed-precision off (or auto)."
            )
        return None
    if choice == "auto":
        return None
    if device.type == "cpu":
        return torch.bfloat16
    raise ConfigError(
        f"Mixed precision is available on CUDA GPUs and the CPU, not on '{device}': "
        f"use --mixed-precision off (or auto)."
    )


def _cuda_bf16(device: torch.device) -> bool:
    with torch.cuda.device(device):
        return torch.cuda.is_bf16_supported(including_emulation=False)
