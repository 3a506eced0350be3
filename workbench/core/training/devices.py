"""The devices this machine can train on, turning a user's choice into a torch device, and the precision the
forward passes compute in there."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Precision:
    """What a run's forward passes compute in, and why, for the user.

    ``dtype`` is the autocast dtype (None: plain float32); ``reason`` says why it was chosen ("this CPU computes
    it natively, with AVX-512 BF16") and ``brief`` the same in a few words for a menu ("native here");
    ``slower`` marks bfloat16 asked for on a CPU that only emulates it.
    """

    dtype: torch.dtype | None
    reason: str
    brief: str
    slower: bool = False

    @property
    def name(self) -> str:
        """``bfloat16`` or ``float32``."""
        return str(self.dtype or torch.float32).removeprefix("torch.")

    def words(self) -> str:
        """The choice and its reason, e.g. "bfloat16: this CPU computes it natively, with AVX-512 BF16"."""
        return f"{self.name}: {self.reason}"


def cpu_bfloat16_instructions() -> str | None:
    """The instructions this CPU computes bfloat16 with natively (AMX, AVX-512 BF16), as PyTorch's CPU
    feature detection reports them; None where bfloat16 would only be emulated in float32 arithmetic."""
    cpu = torch.cpu
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return "AMX"
    if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
        return "AVX-512 BF16"
    return None


def choose_precision(choice: str, device: torch.device) -> Precision:
    """The precision of the forward passes for ``mixed_precision=choice`` on ``device``.

    ``auto`` means bfloat16 where the device computes it natively (a CUDA GPU from Ampere on, a CPU with AMX or
    AVX-512 BF16) and float32 elsewhere. ``on`` asks for bfloat16: on a CPU that only emulates it the run does as
    asked and is marked ``slower``; a CUDA GPU without it, or another device, is a :class:`ConfigError`.
    ``off`` is float32.
    """
    if choice == "off":
        return Precision(None, "mixed precision is off", "off")
    if device.type == "cuda":
        if _cuda_bf16(device):
            return Precision(torch.bfloat16, "this GPU computes it natively", "native here")
        if choice == "on":
            raise ConfigError(
                f"Mixed precision needs bfloat16, which {torch.cuda.get_device_name(device)} does "
                f"not compute natively: use --mixed-precision off (or auto)."
            )
        return Precision(None, "this GPU does not compute bfloat16 natively", "no native bfloat16 here")
    if device.type == "cpu":
        native = cpu_bfloat16_instructions()
        if native is not None:
            return Precision(torch.bfloat16, f"this CPU computes it natively, with {native}", "native here")
        if choice == "auto":
            return Precision(
                None, "this CPU has no AVX-512 BF16 or AMX, so bfloat16 would be slower", "no native bfloat16 here"
            )
        return Precision(
            torch.bfloat16,
            "as asked, but this CPU has no AVX-512 BF16 or AMX and only emulates it: slower than float32",
            "emulated here: slower",
            slower=True,
        )
    if choice == "auto":
        return Precision(None, f"mixed precision is for CUDA GPUs and CPUs, not '{device}'", "not on this device")
    raise ConfigError(
        f"Mixed precision is available on CUDA GPUs and the CPU, not on '{device}': "
        f"use --mixed-precision off (or auto)."
    )


def _cuda_bf16(device: torch.device) -> bool:
    with torch.cuda.device(device):
        return torch.cuda.is_bf16_supported(including_emulation=False)
