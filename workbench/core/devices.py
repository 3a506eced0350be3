"""The devices this machine can train on, and turning a user's choice into a torch device."""

from __future__ import annotations

import torch

from .errors import ConfigError


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
        raise ConfigError(f"There is no device '{choice}' on this machine. Devices here: {listing}; "
                          f"or 'auto' to take the first GPU if there is one.")
    return torch.device(wanted)
