"""Pose-regression networks: an image encoder (any ``nn.Module``) with rotation and translation heads.

A :class:`PoseRegressor` reads (B, 1, H, W) images with its ``encoder`` and predicts a rotation in any
parameterization of :func:`drreg.convert` and a translation. The encoder is injected, as Lightning configures
swappable parts: drreg's 1-channel :class:`ResNetEncoder`, a :class:`TimmEncoder`, or any module that maps
(B, 1, H, W) images to (B, F) features and says ``out_features = F``; in a recipe::

    encoder:
      class_path: drreg.regression.networks.ResNetEncoder
      init_args: {base_channels: 16, depths: [1, 1, 1, 1]}

The string ``backbone`` (``"resnet"``, ``"timm/<model>"``) stays as a shortcut (:func:`build_encoder`).

The regressor's outputs are an *offset* from a reference pose, composed as the pose samplers compose theirs
(:func:`drreg.regression.sampling.perturb`): the rotation head is initialised to the identity's parameters and
the translation head to zero, so an untrained network predicts the reference pose, and the translation is
predicted in units of ``translation_scale`` mm so that both heads see targets of order one.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence

import torch
from torch import nn

from drreg._checks import check_integer, check_number, check_shape
from drreg.geometry.parameterizations import check_parameterization as check_pose_parameterization
from drreg.geometry.pose import POSE_PARAMETERIZATIONS, ROTATION_SIZES, RigidTransform, convert
from drreg.regression.sampling import perturb

__all__ = [
    "ROTATION_OUTPUT_SIZES",
    "BUILTIN_BACKBONE",
    "TIMM_PREFIX",
    "ResNetEncoder",
    "TimmEncoder",
    "PoseRegressor",
    "build_encoder",
    "check_encoder",
    "check_parameterization",
]

ROTATION_OUTPUT_SIZES: dict[str, int] = dict(ROTATION_SIZES)
"""Outputs of the rotation head for each parameterization a network can predict (``matrix`` is not one: a
free 3x3 output is no rotation; ``rotation_9d`` is its projection onto SO(3))."""

BUILTIN_BACKBONE = "resnet"
"""Name of drreg's own ResNet backbone."""

TIMM_PREFIX = "timm/"
"""Backbone names ``"timm/<model>"`` (e.g. ``"timm/resnet18"``) build a timm model (``pip install timm``)."""


def check_parameterization(parameterization: str, convention: str | None) -> None:
    """Raise ``ValueError`` unless a network can predict rotations in this parameterization.

    Args:
        parameterization: one of :data:`ROTATION_OUTPUT_SIZES`.
        convention: Euler convention (required for ``"euler_angles"``).
    """
    if parameterization == "matrix" and parameterization in POSE_PARAMETERIZATIONS:
        raise ValueError(
            "parameterization 'matrix' cannot be regressed (a free 3x3 output is not a rotation); "
            "use 'rotation_9d' (its projection onto SO(3)) or 'rotation_6d'"
        )
    check_pose_parameterization(parameterization, convention, choices=tuple(ROTATION_OUTPUT_SIZES))


# ------------------------------------------------------------------------------------------ backbones


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Zero-init the last norm: each block starts as the identity, which keeps deep stacks trainable.
        nn.init.zeros_(self.bn2.weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """A ResNet for 1-channel images: a 3x3 stem, stages of basic blocks, global average pooling.

    Args:
        in_channels: image channels.
        base_channels: channels of the first stage; stage ``i`` has ``base_channels * 2**i``.
        depths: blocks per stage; ``len(depths)`` stages, each after the first halving the resolution.
        stem_stride: stride of the stem (2 halves the resolution once more, for images of 128 pixels or more).

    Raises:
        ValueError: non-positive base_channels, depths or strides.

    Convention: input (B, in_channels, H, W), output (B, :attr:`out_features`) features.

    Example:
        >>> encoder = ResNetEncoder(base_channels=8, depths=(1, 1))
        >>> encoder(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 16])
    """

    def __init__(
        self, in_channels: int = 1, base_channels: int = 32, depths: Sequence[int] = (2, 2, 2, 2), stem_stride: int = 1
    ) -> None:
        super().__init__()
        depths = tuple(check_integer(d, "depths", minimum=1) for d in depths)
        base_channels = check_integer(base_channels, "base_channels", minimum=1)
        in_channels = check_integer(in_channels, "in_channels", minimum=1)
        if not depths:
            raise ValueError(f"depths must be one or more positive block counts, got {depths}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_channels, 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(base_channels),
            nn.ReLU(),
        )
        stages = []
        channels = base_channels
        for i, depth in enumerate(depths):
            out_channels = base_channels * 2**i
            blocks = [_BasicBlock(channels, out_channels, 1 if i == 0 else 2)]
            blocks += [_BasicBlock(out_channels, out_channels, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.out_features = channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(images)).mean(dim=(-2, -1))


class TimmEncoder(nn.Module):
    """A timm model as a feature extractor (classifier removed), for 1-channel images.

    Args:
        name: a timm model name (``timm.list_models()``), e.g. ``"resnet18"``, ``"efficientnet_b0"``.
        pretrained: load timm's pretrained weights (needs them cached or a network connection).
        in_channels: image channels (timm adapts the first convolution).

    Raises:
        ImportError: timm is not installed.
        ValueError: timm does not know ``name``.
    """

    def __init__(self, name: str, pretrained: bool = False, in_channels: int = 1) -> None:
        super().__init__()
        timm = _import_timm(f"{TIMM_PREFIX}{name}")
        if name not in timm.list_models() and name not in timm.list_models(pretrained=True):
            close = timm.list_models(f"*{name}*")[:10]
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ValueError(f"unknown timm backbone {name!r}{hint}")
        self.model = timm.create_model(name, pretrained=pretrained, in_chans=in_channels, num_classes=0)
        self.out_features = int(self.model.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


def _import_timm(backbone: str):
    if importlib.util.find_spec("timm") is None:
        raise ImportError(
            f"backbone {backbone!r} needs timm, which is not installed: pip install timm "
            f"(or use the built-in backbone={BUILTIN_BACKBONE!r})"
        )
    return importlib.import_module("timm")


def build_encoder(
    backbone: str = BUILTIN_BACKBONE,
    base_channels: int | None = None,
    depths: Sequence[int] | None = None,
    pretrained: bool = False,
) -> ResNetEncoder | TimmEncoder:
    """The image encoder named by ``backbone``: the string shortcut for an injected ``encoder``.

    Args:
        backbone: ``"resnet"`` (drreg's :class:`ResNetEncoder`) or ``"timm/<model>"`` (a :class:`TimmEncoder`).
        base_channels: first-stage channels of ``"resnet"`` (32 if ``None``).
        depths: blocks per stage of ``"resnet"`` (``(2, 2, 2, 2)`` if ``None``).
        pretrained: pretrained timm weights (``"timm/..."`` only).

    Returns:
        ``ResNetEncoder(1, base_channels, depths)`` or ``TimmEncoder(model, pretrained)``: an ``nn.Module``
        mapping (B, 1, H, W) to (B, F) features, with ``out_features = F``.

    Raises:
        ValueError: an unknown backbone name, ``pretrained`` with the built-in backbone, or ``base_channels`` /
            ``depths`` with a timm backbone.
        ImportError: a timm backbone without timm installed.

    Example:
        >>> build_encoder("resnet", base_channels=8, depths=(1, 1)).out_features
        16
    """
    _check_backbone(backbone)
    if backbone == BUILTIN_BACKBONE:
        if pretrained:
            raise ValueError(f"pretrained weights exist only for timm backbones, not {BUILTIN_BACKBONE!r}")
        return ResNetEncoder(
            1, 32 if base_channels is None else base_channels, (2, 2, 2, 2) if depths is None else depths
        )
    if base_channels is not None or depths is not None:
        raise ValueError(
            f"base_channels and depths shape the built-in backbone {BUILTIN_BACKBONE!r} only, not {backbone!r}"
        )
    return TimmEncoder(backbone[len(TIMM_PREFIX) :], pretrained)


def _check_backbone(backbone: object) -> None:
    if backbone == BUILTIN_BACKBONE:
        return
    if not (isinstance(backbone, str) and backbone.startswith(TIMM_PREFIX) and len(backbone) > len(TIMM_PREFIX)):
        raise ValueError(
            f"unknown backbone {backbone!r}; expected {BUILTIN_BACKBONE!r} (built in) or "
            f"'{TIMM_PREFIX}<model>' (a timm model, e.g. '{TIMM_PREFIX}resnet18'), or give an encoder module instead"
        )


def _encoder_from_arguments(
    encoder: nn.Module | None,
    backbone: str | None = None,
    base_channels: int | None = None,
    depths: Sequence[int] | None = None,
    pretrained: bool | None = None,
) -> nn.Module:
    """The ``encoder`` as given, or the one the shortcut arguments name (:func:`build_encoder`).

    Raises:
        ValueError: both an ``encoder`` and a shortcut argument (which would be ignored), or a bad shortcut.
        TypeError: an ``encoder`` that is not an ``nn.Module`` with an ``out_features`` (:func:`check_encoder`).
    """
    shortcut = {
        name: value
        for name, value in (
            ("backbone", backbone),
            ("base_channels", base_channels),
            ("depths", depths),
            ("pretrained", pretrained),
        )
        if value is not None
    }
    if encoder is None:
        return build_encoder(
            BUILTIN_BACKBONE if backbone is None else backbone,
            base_channels,
            None if depths is None else tuple(depths),
            bool(pretrained),
        )
    check_encoder(encoder)
    if backbone is not None:
        _check_backbone(backbone)  # an unknown name is named as such, before the conflict
    if shortcut:
        raise ValueError(
            f"give either an encoder or the backbone shortcut, not both: got encoder={type(encoder).__name__} and "
            f"{', '.join(f'{k}={v!r}' for k, v in shortcut.items())} (set those on the encoder itself, e.g. "
            "--model.encoder.init_args.base_channels)"
        )
    return encoder


def check_encoder(encoder: object) -> int:
    """Return the feature size of an image encoder; raise ``TypeError`` unless it is one.

    Args:
        encoder: an ``nn.Module`` mapping (B, 1, H, W) images to (B, F) features, with an ``out_features`` attribute
            ``F`` (a positive int), as :class:`ResNetEncoder` and :class:`TimmEncoder` have.

    Raises:
        TypeError: not an ``nn.Module``, or no positive integer ``out_features``.
    """
    if not isinstance(encoder, nn.Module):
        hint = " (for a backbone name use backbone=...)" if isinstance(encoder, str) else ""
        raise TypeError(f"encoder must be an nn.Module, got {type(encoder).__name__}{hint}")
    features = getattr(encoder, "out_features", None)
    if isinstance(features, bool) or not isinstance(features, int) or features < 1:
        raise TypeError(
            f"encoder {type(encoder).__name__} must have an out_features attribute, the size F of the (B, F) "
            f"features it returns (a positive int), got {features!r}"
        )
    return features


# ------------------------------------------------------------------------------------------ regressor


class PoseRegressor(nn.Module):
    """Image encoder plus rotation and translation heads: (B, 1, H, W) images to camera poses.

    Args:
        parameterization: rotation parameterization of the head (a key of :data:`ROTATION_OUTPUT_SIZES`).
        convention: Euler convention, for ``"euler_angles"``.
        encoder: the image encoder, (B, 1, H, W) to (B, F) features with ``out_features = F``
            (:func:`check_encoder`), e.g. ``ResNetEncoder(base_channels=16)`` or ``TimmEncoder("resnet18")``;
            if ``None``, the one the backbone shortcut names (drreg's default ResNet when that is unset too).
        reference_pose: (4, 4) reference pose (camera to world, mm) as a nested list or tensor; identity if
            ``None``.
        translation_scale: mm per unit of the translation head's output.
        backbone: shortcut for ``encoder``: ``"resnet"`` or ``"timm/<model>"`` (see :func:`build_encoder`).
        base_channels: shortcut: first-stage channels of the built-in ResNet (32 if unset).
        depths: shortcut: blocks per stage of the built-in ResNet (``(2, 2, 2, 2)`` if unset).
        pretrained: shortcut: pretrained timm weights.

    Raises:
        ValueError: an unknown parameterization, convention or backbone, a bad reference or scale, or both an
            ``encoder`` and a shortcut argument.
        TypeError: an ``encoder`` that is not an ``nn.Module`` with an ``out_features``.
        ImportError: a timm backbone without timm.

    Convention: :meth:`forward` returns the raw head outputs ``(rotation (B, k), translation (B, 3))`` with
    ``k = ROTATION_OUTPUT_SIZES[parameterization]``; :meth:`to_pose` turns them into poses
    ``perturb(reference, convert(rotation, translation_scale * translation, parameterization))``, that is a
    rotation ``R_ref R_Δ`` about the world origin and the parameter translation ``t_ref + t_Δ``.

    Example:
        >>> net = PoseRegressor("rotation_6d", encoder=ResNetEncoder(base_channels=8, depths=(1, 1)))
        >>> net.predict(torch.zeros(2, 1, 32, 32)).matrix.shape
        torch.Size([2, 4, 4])
    """

    reference: torch.Tensor  # buffer (4, 4)

    def __init__(
        self,
        parameterization: str = "rotation_6d",
        convention: str | None = None,
        encoder: nn.Module | None = None,
        reference_pose: Sequence[Sequence[float]] | torch.Tensor | None = None,
        translation_scale: float = 50.0,
        *,
        backbone: str | None = None,
        base_channels: int | None = None,
        depths: Sequence[int] | None = None,
        pretrained: bool | None = None,
    ) -> None:
        super().__init__()
        check_parameterization(parameterization, convention)
        check_number(translation_scale, "translation_scale", positive=True, unit="mm")
        self.parameterization = parameterization
        self.convention = convention if parameterization == "euler_angles" else None
        self.translation_scale = float(translation_scale)
        reference = torch.eye(4) if reference_pose is None else torch.as_tensor(reference_pose, dtype=torch.float64)
        check_shape(reference, "4 4", name="reference_pose")
        if not torch.isfinite(reference).all():
            raise ValueError("reference_pose must be finite")
        self.register_buffer("reference", reference.to(torch.float32))
        self.encoder = _encoder_from_arguments(encoder, backbone, base_channels, depths, pretrained)
        features = check_encoder(self.encoder)
        self.rotation_head = nn.Linear(features, ROTATION_OUTPUT_SIZES[parameterization])
        self.translation_head = nn.Linear(features, 3)
        # Start at the reference pose: small weights, biases set to the identity offset's parameters.
        for head in (self.rotation_head, self.translation_head):
            nn.init.normal_(head.weight, std=1e-3)
        with torch.no_grad():
            self.rotation_head.bias.copy_(self.identity_rotation())
            self.translation_head.bias.zero_()

    def identity_rotation(self) -> torch.Tensor:
        """(k,) parameters of the identity rotation in the head's parameterization."""
        if self.parameterization == "se3_log_map":
            return torch.zeros(3)
        rotation, _ = RigidTransform(torch.eye(4)).convert(self.parameterization, self.convention)
        return rotation[0].to(torch.float32)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw head outputs.

        Args:
            images: (B, 1, H, W) images in ``[0, 1]``.

        Returns:
            ``rotation`` (B, k) parameters and ``translation`` (B, 3) in units of ``translation_scale`` mm.
        """
        features = self.encoder(images)
        return self.rotation_head(features), self.translation_head(features)

    def to_pose(self, rotation: torch.Tensor, translation: torch.Tensor) -> RigidTransform:
        """Poses from head outputs: (B, k) and (B, 3) to a (B, 4, 4) :class:`RigidTransform` (float32)."""
        offset = convert(
            rotation.float(),
            self.translation_scale * translation.float(),
            parameterization=self.parameterization,
            convention=self.convention,
        )
        return perturb(RigidTransform(self.reference[None]), offset)

    def predict(self, images: torch.Tensor) -> RigidTransform:
        """Camera poses of (B, 1, H, W) images: a (B, 4, 4) :class:`RigidTransform` (camera to world, mm)."""
        return self.to_pose(*self(images))
