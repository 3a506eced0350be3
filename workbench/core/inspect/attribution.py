"""What the network looked at: attribution maps from Captum, one value per pixel of the network's input.

Four of Captum's methods, chosen for what they teach:

- ``saliency``: the magnitude of the gradient of the class's score with respect to each pixel (Simonyan et al.,
  2014), the largest over the colour channels: which pixels, changed a little, would change the score most.
- ``integrated-gradients``: the gradient summed along the straight path from a black image to this one (Sundararajan
  et al., 2017), summed over the channels; its values add up to the score's change from the black image.
- ``grad-cam``: the last convolution's feature maps weighted by their mean gradient, kept where positive and
  scaled up to the image's size (Selvaraju et al., 2017): coarse, but the regions a CNN used. Convolutional
  networks only.
- ``occlusion``: the score's drop when a small square of the image is blacked out, square by square (Zeiler and
  Fergus, 2014): slow but asks the network directly, with no gradient.

The score attributed is the class's output of the network (its logit), as Captum's examples use. A "black" pixel
is 0 before normalisation, so in the network's input it is ``-mean / std``: the image's own background for
Fashion-MNIST and MNIST.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from workbench.core.architecture import Architecture
from workbench.core.inspect.one_image import InspectError

METHODS = ("saliency", "integrated-gradients", "grad-cam", "occlusion")
"""The attribution methods, by the name the CLI and the app use."""
METHOD_TITLES = {
    "saliency": "Gradient saliency",
    "integrated-gradients": "Integrated gradients",
    "grad-cam": "Grad-CAM",
    "occlusion": "Occlusion",
}
INTEGRATION_STEPS = 50
OCCLUSION_WINDOW = 4
"""Side of the square blacked out by occlusion, in pixels: about a stroke of a 28×28 digit."""
OCCLUSION_STRIDE = 2


def applicable_methods(architecture: Architecture) -> list[str]:
    """The methods that apply to ``architecture``: Grad-CAM needs a convolution (inside a block or not)."""
    has_convolution = any(layer.type == "Conv2d" for _, _, layer in architecture.walk())
    return [method for method in METHODS if method != "grad-cam" or has_convolution]


def check_method(method: str, architecture: Architecture) -> None:
    """:class:`InspectError` naming the methods that apply, if ``method`` is unknown or does not apply."""
    usable = applicable_methods(architecture)
    if method in usable:
        return
    names = ", ".join(usable)
    if method == "grad-cam":
        raise InspectError(
            f"Grad-CAM weighs a convolution's feature maps, and this network has no Conv2d layer: use one of {names}."
        )
    raise InspectError(f"Unknown attribution method '{method}': use one of {names}.")


def attribute(
    model: nn.Module,
    architecture: Architecture,
    images: torch.Tensor,
    targets: Sequence[int] | torch.Tensor,
    method: str,
    black: Sequence[float],
    steps: int = INTEGRATION_STEPS,
) -> np.ndarray:
    """The attribution of each image in ``images`` (``(N, C, H, W)``, normalised) to the score of its class in
    ``targets``, as a float32 ``(N, H, W)`` array; larger means "counted more for that class".

    ``black`` is a black pixel per channel in the network's input (``-mean / std``): integrated gradients start
    from an image of it, occlusion paints with it. The model is copied (float32, eval mode) and left as it was.
    """
    # Imported here, not with the module: Captum imports matplotlib, which takes half a second and writes its font
    # cache into the user's home; commands and windows that never attribute should not pay for either.
    from captum.attr import IntegratedGradients, Occlusion, Saliency

    check_method(method, architecture)
    if images.dim() != 4 or tuple(images.shape[1:]) != tuple(architecture.input_shape):
        raise InspectError(
            f"Attribution needs images of the network's input shape {tuple(architecture.input_shape)}, "
            f"not {tuple(images.shape[1:])}."
        )
    network = copy.deepcopy(model).to("cpu", torch.float32).to(memory_format=torch.contiguous_format).eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)  # the maps need the input's gradient only
    # the gradient methods need the input's gradient (Captum warns when it has to ask for it itself)
    inputs = images.detach().to("cpu", torch.float32).contiguous().requires_grad_(method != "occlusion")
    target = torch.as_tensor(targets, dtype=torch.long).reshape(-1)
    baseline = torch.tensor(list(black), dtype=torch.float32).view(1, -1, 1, 1).expand_as(inputs).contiguous()
    with torch.enable_grad():
        if method == "saliency":
            maps = Saliency(network).attribute(inputs, target=target, abs=True).amax(dim=1)
        elif method == "integrated-gradients":
            # Captum cannot split below one path point of every image, so the batch holds at least all of them
            batch = max(steps, 64, len(inputs))
            attributions = IntegratedGradients(network).attribute(
                inputs, baselines=baseline, target=target, n_steps=steps, internal_batch_size=batch
            )
            maps = attributions.sum(dim=1)
        elif method == "grad-cam":
            maps = _grad_cam(network, inputs, target)
        else:
            channels = inputs.shape[1]
            maps = (
                Occlusion(network)
                .attribute(
                    inputs,
                    sliding_window_shapes=(channels, OCCLUSION_WINDOW, OCCLUSION_WINDOW),
                    strides=(channels, OCCLUSION_STRIDE, OCCLUSION_STRIDE),
                    baselines=baseline,
                    target=target,
                    perturbations_per_eval=64,
                )
                .sum(dim=1)
            )
    return maps.detach().float().numpy()


def _grad_cam(network: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM on the network's last convolution, scaled up (bilinear) to the input's height and width."""
    from captum.attr import LayerAttribution, LayerGradCam

    last_convolution = [module for module in network.modules() if isinstance(module, nn.Conv2d)][-1]
    cam = LayerGradCam(network, last_convolution).attribute(inputs, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(inputs.shape[2:]), interpolate_mode="bilinear")[:, 0]


def black_pixel(mean: Sequence[float], std: Sequence[float]) -> list[float]:
    """A black pixel (0 before normalisation) in the network's input, per channel: ``-mean / std``."""
    return [-m / s for m, s in zip(mean, std)]
