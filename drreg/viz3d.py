"""3D scenes of a CT and its cameras with pyvista: meshes of the CT or its labelmap, the camera and the detector.

DiffDRR 0.6.1's ``drr_to_mesh``, ``labelmap_to_mesh``, ``img_to_mesh``, ``visualize_scene`` and ``add_image``
(re-exported by :mod:`drreg.visualization`). pyvista is optional: ``pip install 'drreg[viz3d]'``. The meshes
build wherever pyvista is installed; showing or screenshotting a scene needs a rendering backend (a display, or
VTK's EGL/OSMesa offscreen rendering; a plotter is made offscreen where no display is set).

Convention: meshes are in world millimetres (the image affine), as the DRR's rays are.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import torch
import torchio as tio

__all__ = ["drr_to_mesh", "labelmap_to_mesh", "img_to_mesh", "visualize_scene", "add_image", "MESH_METHODS"]

MESH_METHODS = ("surface_nets", "marching_cubes")
"""The surface extraction methods of :func:`drr_to_mesh`."""

_CAMERA_SIZE = 0.125  # the camera pyramid reaches this fraction of the way from the source to the detector corners
_SMOOTHING = {  # Taubin smoothing of every mesh, as DiffDRR smooths them
    "n_iter": 100,
    "feature_angle": 120.0,
    "boundary_smoothing": False,
    "feature_smoothing": False,
    "non_manifold_smoothing": True,
    "normalize_coordinates": True,
}


def _pyvista() -> Any:
    """The pyvista module, or an ImportError naming the extra to install."""
    try:
        import pyvista
    except ImportError as error:
        raise ImportError(
            "drreg's 3D visualization needs pyvista (and VTK): pip install 'drreg[viz3d]' (or pip install pyvista)"
        ) from error
    return pyvista


def _grid(pyvista: Any, image: tio.Image, values: np.ndarray) -> Any:
    """A pyvista grid on the voxel indices of ``image`` holding ``values`` (its voxels) as point data."""
    grid = pyvista.ImageData(dimensions=image.spatial_shape, spacing=(1, 1, 1), origin=(0, 0, 0))
    grid.point_data["values"] = values.flatten(order="F")  # VTK runs x fastest
    return grid


def _surface_nets(pyvista: Any, grid: Any, verbose: bool) -> Any:
    """SurfaceNets surfaces of the labels held by ``grid`` (needs pyvista >= 0.43 and VTK >= 9.3)."""
    if not hasattr(grid, "contour_labels"):
        raise ImportError("method='surface_nets' needs pyvista>=0.43 and vtk>=9.3: pip install -U pyvista vtk")
    # VTK >= 9.6 always orients the faces; pyvista deprecates the argument there.
    orient = {"orient_faces": True} if pyvista.vtk_version_info < (9, 6) else {}
    return grid.contour_labels(
        boundary_style="strict_external",
        smoothing=True,
        output_mesh_type="quads",
        pad_background=True,
        simplify_output=False,
        progress_bar=verbose,
        **orient,
    )


def drr_to_mesh(
    subject: tio.Subject,
    method: str,
    threshold: float = 150,
    extract_largest: bool = True,
    verbose: bool = True,
) -> Any:
    """A surface mesh of the CT voxels above ``threshold`` HU (DiffDRR's ``drr_to_mesh``).

    The surface is extracted on the voxel grid, moved to world mm by the volume's affine, then: the largest
    connected part kept (optional), Taubin-smoothed, decimated by 25 % (``marching_cubes`` only), holes filled
    and the mesh cleaned.

    Args:
        subject: a ``torchio.Subject`` with a ``volume`` (HU), as made by :func:`drreg.data.read`.
        method: ``"surface_nets"`` (needs pyvista >= 0.43, VTK >= 9.3) or ``"marching_cubes"``.
        threshold: HU above which a voxel is inside.
        extract_largest: keep only the largest connected component.
        verbose: show pyvista's progress bars.

    Returns:
        ``pyvista.PolyData`` in world mm.

    Raises:
        ImportError: pyvista is not installed.
        ValueError: unknown ``method``; the subject has no volume.
    """
    if method not in MESH_METHODS:
        raise ValueError(f"method must be one of {MESH_METHODS}, got {method!r}")
    pyvista = _pyvista()
    volume = subject.get("volume")
    if not isinstance(volume, tio.Image):
        raise ValueError("drr_to_mesh needs a subject with a 'volume' image (read(...))")
    hu = volume.data[0].detach().cpu().numpy()
    if method == "marching_cubes":
        grid = _grid(pyvista, volume, hu)
        mesh = grid.contour(
            isosurfaces=1, scalars="values", rng=[threshold, np.inf], method="marching_cubes", progress_bar=verbose
        )
    else:
        mesh = _surface_nets(pyvista, _grid(pyvista, volume, hu > threshold), verbose)
    mesh = mesh.transform(np.asarray(volume.affine, dtype=np.float64), inplace=False)
    if extract_largest:
        mesh.extract_largest(inplace=True, progress_bar=verbose)
    mesh.point_data.clear()
    mesh.cell_data.clear()
    mesh.smooth_taubin(inplace=True, progress_bar=verbose, **_SMOOTHING)
    if method == "marching_cubes":
        mesh.decimate_pro(0.25, inplace=True, progress_bar=verbose)
    mesh.fill_holes(100, inplace=True, progress_bar=verbose)
    mesh.clean(inplace=True, progress_bar=verbose)
    return mesh


def labelmap_to_mesh(subject: tio.Subject, verbose: bool = True) -> Any:
    """SurfaceNets meshes of every structure of the subject's labelmap, smoothed, in world mm (DiffDRR's).

    Args:
        subject: a ``torchio.Subject`` with a ``mask`` labelmap.
        verbose: show pyvista's progress bars.

    Returns:
        ``pyvista.PolyData`` (its ``BoundaryLabels`` cell data tell the structures apart).

    Raises:
        ImportError: pyvista is not installed (or too old for SurfaceNets).
        ValueError: the subject has no labelmap.
    """
    mask = subject.get("mask")
    if not isinstance(mask, tio.Image):
        raise ValueError("labelmap_to_mesh needs a subject with a 'mask' labelmap (read(..., labelmap=...))")
    pyvista = _pyvista()
    mesh = _surface_nets(pyvista, _grid(pyvista, mask, mask.data[0].detach().cpu().numpy()), verbose)
    mesh.smooth_taubin(inplace=True, progress_bar=verbose, **_SMOOTHING)
    mesh.clean(inplace=True, progress_bar=verbose)
    return mesh.transform(np.asarray(mask.affine, dtype=np.float64), inplace=False)


def _camera_mesh(pyvista: Any, source: np.ndarray, target: np.ndarray) -> Any:
    """A pyramid from the source toward the four detector corners: ``target`` is (H, W, 3) world points."""
    corners = [target[0, 0], target[-1, 0], target[-1, -1], target[0, -1]]
    vertices = np.stack([source + _CAMERA_SIZE * (corner - source) for corner in corners] + [source])
    # One quad (the base) and four triangles to the apex (vertex 4), in VTK's cell layout (count, ids...).
    faces = np.array([4, 0, 1, 2, 3, 3, 0, 1, 4, 3, 1, 2, 4, 3, 0, 3, 4, 3, 2, 3, 4])
    return pyvista.PolyData(vertices, faces)


def img_to_mesh(drr: Any, pose: Any, calibration: Any = None, **kwargs: Any) -> tuple[Any, Any, Any, Any]:
    """Meshes of one camera and its detector, the DRR at ``pose`` as the detector's texture (DiffDRR's).

    Args:
        drr: a DRR, called as ``drr(pose)``; ``drr.detector(pose, calibration)`` gives its rays.
        pose: one camera pose (``RigidTransform`` of batch 1).
        calibration: optional calibration passed on to the DRR and its detector.
        **kwargs: unused (DiffDRR's signature).

    Returns:
        ``(camera, detector, texture, principal_ray)``: the camera pyramid (``PolyData``), the detector plane
        (``StructuredGrid`` with texture coordinates and ``height``/``width`` field data), the DRR as an 8-bit
        ``Texture`` and the line from the source to the detector centre.

    Raises:
        ImportError: pyvista is not installed.
    """
    pyvista = _pyvista()
    with torch.no_grad():
        img = drr(pose) if calibration is None else drr(pose, calibration=calibration)
        source, target = drr.detector(pose, calibration)
    pixels = img.detach().cpu().squeeze().double().numpy()
    span = pixels.max() - pixels.min()
    pixels = (pixels - pixels.min()) / (span if span > 0 else 1.0)  # a blank DRR stays black instead of NaN
    texture = pyvista.numpy_to_texture((255.0 * pixels).astype(np.uint8))

    height, width = int(drr.detector.height), int(drr.detector.width)
    source = source.detach().cpu().squeeze().double().numpy()
    target = target.detach().cpu().double().numpy().reshape(height, width, 3)
    principal_ray = pyvista.Line(source, target.mean(axis=(0, 1)))
    camera = _camera_mesh(pyvista, source, target)
    detector = pyvista.StructuredGrid(target[..., 0], target[..., 1], target[..., 2])
    detector.add_field_data([height], "height")
    detector.add_field_data([width], "width")
    detector.texture_map_to_plane(origin=target[-1, 0], point_u=target[-1, -1], point_v=target[0, 0], inplace=True)
    return camera, detector, texture, principal_ray


def _plotter(pyvista: Any) -> Any:
    """A ``pyvista.Plotter``, offscreen where no display is set (Linux without X or Wayland)."""
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return pyvista.Plotter(off_screen=True if headless else None)


def visualize_scene(
    drr: Any,
    pose: Any,
    labelmap: bool = False,
    grid: bool = True,
    verbose: bool = False,
    **kwargs: Any,
) -> Any:
    """A pyvista scene of the DRR's CT (or labelmap) and the camera at ``pose`` (DiffDRR's ``visualize_scene``).

    Args:
        drr: a DRR holding its ``subject``.
        pose: one camera pose.
        labelmap: mesh the labelmap (:func:`labelmap_to_mesh`) instead of the CT (:func:`drr_to_mesh` with
            ``"surface_nets"``).
        grid: show the axes grid.
        verbose: show pyvista's progress bars.
        **kwargs: passed on to :func:`drr_to_mesh` (``threshold``, ``extract_largest``).

    Returns:
        The ``pyvista.Plotter`` (``.show()`` it, or ``.screenshot(path)``); offscreen where no display is set.

    Raises:
        ImportError: pyvista is not installed.
    """
    pyvista = _pyvista()
    if labelmap:
        mesh = labelmap_to_mesh(drr.subject, verbose=verbose)
    else:
        mesh = drr_to_mesh(drr.subject, "surface_nets", verbose=verbose, **kwargs)
    plotter = _plotter(pyvista)
    plotter.add_mesh(mesh)
    plotter = add_image(drr, pose, plotter)
    if grid:
        plotter.show_grid()
    return plotter


def add_image(drr: Any, pose: Any, pl: Any) -> Any:
    """Add the camera, the textured detector and the principal ray at ``pose`` to the plotter ``pl``.

    Returns:
        ``pl``.
    """
    camera, detector, texture, principal_ray = img_to_mesh(drr, pose)
    pl.add_mesh(camera, show_edges=True)
    pl.add_mesh(detector, texture=texture)
    pl.add_mesh(principal_ray, color="lime", line_width=3)
    return pl
