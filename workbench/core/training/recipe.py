"""What a config asks of a run's arithmetic: the optimizer, the learning-rate schedule and the loss."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from workbench.core.training.config import TrainConfig

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(outputs, labels)``: the mean loss of a batch, as a 0-d tensor."""
Scheduler = torch.optim.lr_scheduler.LRScheduler


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over the model's parameters.

    On a CUDA GPU, SGD, Adam and AdamW use PyTorch's fused implementations: one kernel updates every parameter,
    where the default launches several per step, which is most of an optimiser step for a small network. On the
    CPU, Adam and AdamW do too (measured on 2 cores, AdamW at batch 256: seed-simplenet 1.3x, cnn-small 1.08x);
    fused SGD gains nothing there.
    """
    params, lr, decay = list(model.parameters()), config.lr, config.weight_decay
    if config.optimizer == "sgd":
        fused = True if _fusable(params, on_cpu=False) else None  # None: PyTorch's default implementation
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=decay, fused=fused
        )
    fused = True if _fusable(params, on_cpu=True) else None
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay, fused=fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay, fused=fused)
    return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=decay)


def _fusable(params: Sequence[torch.Tensor], on_cpu: bool) -> bool:
    devices = ("cuda", "cpu") if on_cpu else ("cuda",)
    return bool(params) and all(param.device.type in devices and param.is_floating_point() for param in params)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a saved optimizer state, keeping this optimizer's own implementation (fused or not): a run saved on
    a GPU may go on on the CPU, and the other way round."""
    implementation: list[dict[str, Any]] = [
        {key: group[key] for key in ("fused", "foreach") if key in group} for group in optimizer.param_groups
    ]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, implementation):
        group.update(kept)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, batches_per_epoch: int, epochs: int | None = None
) -> tuple[Scheduler | None, bool]:
    """``(scheduler or None, steps_per_batch)``: cosine and one-cycle move every batch over ``epochs``
    (default: the whole run), step every epoch."""
    total = (config.epochs if epochs is None else epochs) * batches_per_epoch
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma), False
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total), True
    if config.schedule == "one-cycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total), True
    return None, False


def make_loss(name: str, num_classes: int) -> LossFunction:
    """Cross-entropy on the scores, or ``mse``: the class's first loss, the squared error between the outputs
    (as they are, no softmax) and the one-hot labels, summed over the outputs and averaged over the batch:
    ``torch.sum((outputs - onehot) ** 2, 1).mean()``."""
    if name == "mse":

        def squared_error_on_one_hot(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            outputs = outputs.float()  # the sum over the outputs in float32, also under bfloat16 autocast
            one_hot = functional.one_hot(targets, num_classes).to(outputs.dtype)
            return torch.sum((outputs - one_hot) ** 2, 1).mean()

        return squared_error_on_one_hot
    return functional.cross_entropy
