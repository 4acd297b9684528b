"""``drreg simulate``: realistic X-rays of a CT at given poses, written as DICOM, TIFF and PNG, with ``poses.json``.

A simulation renders and writes files: no optimiser, no steps, no checkpoints. So the command is not a
``LightningCLI`` (whose ``Trainer`` would bring ``--trainer.*`` flags that mean nothing here) but jsonargparse's
parser of :func:`simulate`, with the same look as the other commands: ``--config`` YAML recipes whose keys are also
flags, ``--print_config``, ``class_path``/``init_args`` for the physics, a ``config.yaml`` saved in each run's
``version_<n>`` folder, no overwriting of a previous run, and Ctrl-C/SIGTERM leaving what was written intact.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ActionConfigFile, ArgumentParser

from drreg._checks import check_choice, check_integer, check_number
from drreg.cli.base import COMMANDS, previous_results, remove_results
from drreg.geometry import EULER_CONVENTIONS, RigidTransform, pose_vectors_to_transform
from drreg.imaging import Imaging
from drreg.physics import PhysicsDRR, XRayPhysics
from drreg.xray_files import to_uint16, write_dicom, write_png, write_tiff

__all__ = ["FORMATS", "RandomPoses", "simulate", "simulate_parser", "simulate_command"]

FORMATS = {"dicom": ".dcm", "tiff": ".tif", "png": ".png"}
"""The files written per pose, by format: DICOM (the detector in its tags), 16-bit TIFF, 8-bit PNG preview."""

#: What a run leaves in its folder: a folder holding any of them is a previous run's, never written into.
_RESULT_FILES = ("poses.json", "config.yaml", "*.dcm", "*.tif", "*.png")


@dataclass(frozen=True)
class RandomPoses:
    """Poses drawn uniformly around a centre: each Euler angle within ``± rotation_deg``, each translation
    component within ``± translation_mm``.

    Args:
        n: poses to draw (0: none).
        center: the centre pose vector ``(α, β, γ, tx, ty, tz)`` (Euler degrees, mm).
        rotation_deg: half-width of the angle offsets (degrees).
        translation_mm: half-width of the translation offsets (mm).
        seed: seed of the draw (the noise has its own, ``seed`` of :func:`simulate`).
    """

    n: int = 0
    center: tuple[float, float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 850.0, 0.0)
    rotation_deg: float = 10.0
    translation_mm: float = 20.0
    seed: int = 0

    def sample(self) -> torch.Tensor:
        """``(n, 6)`` float64 pose vectors."""
        n = check_integer(self.n, "random_poses.n", minimum=0)
        if len(self.center) != 6:
            raise ValueError(f"random_poses.center must be 6 numbers (α, β, γ, tx, ty, tz), got {list(self.center)}")
        rotation = check_number(self.rotation_deg, "random_poses.rotation_deg", minimum=0.0, unit="degrees")
        translation = check_number(self.translation_mm, "random_poses.translation_mm", minimum=0.0, unit="mm")
        generator = torch.Generator().manual_seed(check_integer(self.seed, "random_poses.seed", minimum=None))
        offsets = 2.0 * torch.rand(n, 6, generator=generator, dtype=torch.float64) - 1.0
        widths = torch.tensor([rotation] * 3 + [translation] * 3, dtype=torch.float64)
        return torch.as_tensor(self.center, dtype=torch.float64) + offsets * widths


def simulate(
    physics: XRayPhysics | None = None,
    imaging: Imaging | None = None,
    poses: list[list[float]] | None = None,
    random_poses: RandomPoses | None = None,
    pose_convention: str = "ZXY",
    seed: int = 0,
    decomposition: str = "hard",
    bone_scale: float = 1.0,
    metal: str | None = None,
    metal_threshold: float | None = None,
    formats: list[str] | None = None,
    name: str = "xray",
    output: str = "outputs/simulate",
    version: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    overwrite: bool = False,
    save_config: str | None = None,
) -> dict[str, Any]:
    """Simulate X-rays of a CT at poses and write them, one DICOM, TIFF and PNG per pose, with ``poses.json``.

    Args:
        physics: the forward model (spectrum, detector, scatter, blur, noise), :class:`~drreg.physics.XRayPhysics`;
            ``None``: its defaults (80 kVp, no scatter, blur or noise). Its ``output`` says what the files hold:
            ``"raw"`` detector intensities (read them with ``negative_log=True``) or ``"negative_log"``.
        imaging: the CT (``volume``: ``"example"`` or a CT file), the detector (``sdd``, ``height``, ``delx``, ...)
            and the renderer, as ``drreg register``'s ``data.imaging``. ``None``: ``Imaging()``.
        poses: pose vectors ``(α, β, γ, tx, ty, tz)`` (Euler degrees in ``pose_convention``, mm).
        random_poses: poses drawn around a centre, after ``poses``.
        pose_convention: Euler convention of the pose vectors.
        seed: seed of the noise (one generator, drawn pose after pose).
        decomposition: ``"hard"`` or ``"soft"`` material decomposition (:class:`~drreg.physics.PhysicsDRR`).
        bone_scale: factor on the density of bone.
        metal: a material name for metal voxels (``"titanium"``), or ``None``.
        metal_threshold: HU at or above which a voxel is metal (with ``metal``).
        formats: the files per pose, among ``dicom``, ``tiff``, ``png`` (default: all).
        name: file name stem: ``<name>_000.dcm``, ...
        output: the folder of the runs; each run writes into a new ``version_<n>`` in it.
        version: write into ``version_<version>`` (refused if it holds a previous run's files, unless
            ``overwrite``); ``None``: the next free one.
        device: where to render (``"cpu"``, ``"cuda"``).
        progress: show a progress bar.
        overwrite: write into a folder holding a previous run's files, replacing them: that run's
            ``poses.json``, ``config.yaml`` and images are deleted once the new run has its X-ray model and starts
            writing, so the folder never mixes the two runs' images.
        save_config: YAML text saved as ``config.yaml`` in the run folder (the command's resolved configuration).

    Returns:
        What ``poses.json`` holds: ``status``, ``folder``, the detector, the physics, ``true_poses`` (the pose vectors,
        ready for ``drreg register --data.true_poses``) and one entry per image (pose vector, 4x4 matrix, files,
        scale).

    Raises:
        ValueError: a bad argument (named); FileExistsError: the run folder holds a previous run's files.
    """
    imaging = Imaging() if imaging is None else imaging
    check_choice(pose_convention, EULER_CONVENTIONS, "pose_convention")
    seed = check_integer(seed, "seed", minimum=None)
    formats = list(FORMATS) if formats is None else list(formats)
    for kind in formats:
        check_choice(kind, tuple(FORMATS), "formats entry")
    if not formats:
        raise ValueError(f"formats must name at least one of {', '.join(FORMATS)}, got []")
    if not name or Path(name).name != name:
        raise ValueError(f"name must be a file name stem without folders, got {name!r}")
    vectors = _pose_vectors(poses, random_poses)
    _check_run_folder(Path(output), version, overwrite)
    xray = _physics_drr(imaging, physics, decomposition, bone_scale, metal, metal_threshold).to(device)
    folder = _run_folder(Path(output), version)
    remove_results(previous_results(folder, _RESULT_FILES))  # with overwrite: no stale image of the old run stays
    if save_config is not None:
        _write_text(folder / "config.yaml", save_config)
    intensity = xray.physics.output
    record: dict[str, Any] = {
        "status": "running",
        "folder": str(folder),
        "intensity": intensity,
        "read_with": {"negative_log": intensity == "raw"},
        "pose_convention": pose_convention,
        "pose_vector": f"(α, β, γ) Euler degrees ({pose_convention}), (tx, ty, tz) mm",
        "matrix": "the pose: camera to world, 4x4, mm (as drreg register's poses.json)",
        "volume": imaging.record()["volume"],
        "detector": _detector_record(xray, imaging),
        "physics": _physics_record(xray.physics),
        "material_model": {"decomposition": decomposition, "bone_scale": bone_scale, "metal": metal},
        "seed": seed,
        "true_poses": [],
        "images": [],
    }
    transforms = pose_vectors_to_transform(vectors, pose_convention)
    generator = torch.Generator(device=device).manual_seed(seed)
    digits = max(3, len(str(len(vectors) - 1)))
    uids = _uids()
    bar = _progress(progress)
    try:
        with bar:
            task = bar.add_task(f"simulating {len(vectors)} X-ray(s)", total=len(vectors))
            for index, matrix in enumerate(transforms.matrix):
                pose = RigidTransform.unchecked(matrix[None].to(device))
                with torch.no_grad():
                    image = xray(pose, generator=generator)[0, 0].cpu()
                source = xray.drr.detector.camera_to_world(pose).matrix[0, :3, 3]
                entry = {
                    "index": index,
                    "pose_vector": vectors[index].tolist(),
                    "matrix": matrix.tolist(),
                    "source_to_isocentre_mm": float(source.norm()),  # to the world origin (the CT's centre)
                    "files": {},
                }
                record["images"].append(entry)
                record["true_poses"].append(entry["pose_vector"])
                stem = folder / f"{name}_{index:0{digits}d}"
                _write_files(stem, image, xray, record, entry, formats, uids, overwrite)
                _write_text(folder / "poses.json", json.dumps(record, indent=2))
                bar.advance(task)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: every file written is whole; poses.json lists them
        record["status"] = "interrupted"
        _write_text(folder / "poses.json", json.dumps(record, indent=2))
        print(f"drreg simulate: interrupted; {len(record['images'])} X-ray(s) so far in {folder}")
        raise
    record["status"] = "finished"
    _write_text(folder / "poses.json", json.dumps(record, indent=2))
    _print_summary(record, folder, formats)
    return record


def _physics_drr(
    imaging: Imaging,
    physics: XRayPhysics | None,
    decomposition: str,
    bone_scale: float,
    metal: str | None,
    metal_threshold: float | None,
) -> PhysicsDRR:
    """The :class:`PhysicsDRR` of the imaging set-up (its CT, detector and renderer)."""
    missing = imaging.missing()
    if missing:
        flags = " ".join(f"--imaging.{key} <{'rows' if key == 'height' else 'mm'}>" for key in missing)
        raise ValueError(f"the simulated detector needs {', '.join(missing)}: give {flags}")
    if imaging.bone_attenuation_multiplier != 1.0:
        raise ValueError(
            "imaging.bone_attenuation_multiplier must be 1.0 for simulate (it scales the DRR's densities, which the "
            f"X-ray physics does not use); give bone_scale instead, got {imaging.bone_attenuation_multiplier}"
        )
    return imaging.build_physics_drr(
        physics=physics,
        decomposition=decomposition,
        metal=metal,
        metal_threshold=metal_threshold,
        bone_scale=bone_scale,
    )


def _write_files(
    stem: Path,
    image: torch.Tensor,
    xray: PhysicsDRR,
    record: dict[str, Any],
    entry: dict[str, Any],
    formats: list[str],
    uids: tuple[str, str],
    overwrite: bool,
) -> None:
    """Write one pose's image in each format, noting each file in ``entry`` once it is whole."""
    detector = xray.drr.detector
    spacing = (float(detector.dely), float(detector.delx))
    intensity = record["intensity"]
    comments = {key: entry[key] for key in ("index", "pose_vector", "matrix")}
    comments.update(pose_convention=record["pose_convention"], intensity=intensity, physics=record["physics"])
    stored = to_uint16(image)  # as each writer stores it: value = pixel * slope + intercept
    entry["scale"] = {"slope": stored.slope, "intercept": stored.intercept}
    for kind in formats:
        path = stem.with_suffix(FORMATS[kind])
        if kind == "dicom":
            write_dicom(
                path,
                image,
                spacing,
                float(detector.sdd),
                entry["source_to_isocentre_mm"],
                kvp=xray.physics.spectrum.kvp,
                intensity=intensity,
                comments=comments,
                tags=_physics_tags(xray.physics),
                study_uid=uids[0],
                series_uid=uids[1],
                instance_number=entry["index"] + 1,
                overwrite=overwrite,
            )
        elif kind == "tiff":
            write_tiff(path, image, spacing, comments, overwrite=overwrite)
        else:
            write_png(path, image, intensity, overwrite=overwrite)
        entry["files"][kind] = path.name


def _detector_record(xray: PhysicsDRR, imaging: Imaging) -> dict[str, Any]:
    detector = xray.drr.detector
    return {
        "sdd": float(detector.sdd),
        "height": int(detector.height),
        "width": int(detector.width),
        "delx": float(detector.delx),
        "dely": float(detector.dely),
        "x0": float(detector.center_x),
        "y0": float(detector.center_y),
        "reverse_x_axis": bool(imaging.reverse_x_axis),
    }


def _pose_vectors(poses: list[list[float]] | None, random_poses: RandomPoses | None) -> torch.Tensor:
    """(N, 6) float64 pose vectors: ``poses``, then the random ones."""
    given = [] if poses is None else poses
    if any(not isinstance(pose, Sequence) or len(pose) != 6 for pose in given):
        raise ValueError(f"poses must be a list of pose vectors [α, β, γ, tx, ty, tz] (Euler degrees, mm), got {poses}")
    vectors = torch.tensor(given, dtype=torch.float64).reshape(-1, 6)
    if not torch.isfinite(vectors).all():
        raise ValueError(f"poses must be finite numbers, got {poses}")
    if random_poses is not None:
        vectors = torch.cat([vectors, random_poses.sample()])
    if len(vectors) == 0:
        raise ValueError("no pose to simulate: give poses ([[α, β, γ, tx, ty, tz], ...]) or random_poses.n > 0")
    return vectors


def _check_run_folder(output: Path, version: int | None, overwrite: bool) -> None:
    """Refuse ``version_<version>`` when it holds a previous run's files (before anything is read or rendered)."""
    if version is None:
        return
    folder = output / f"version_{check_integer(version, 'version', minimum=0)}"
    previous = previous_results(folder, _RESULT_FILES)
    if previous and not overwrite:
        names = ", ".join(path.name for path in previous[:5]) + (" and more" if len(previous) > 5 else "")
        raise FileExistsError(
            f"{folder} already holds a previous run's results ({names}); refusing to overwrite them: leave "
            "--version unset for the next free version_<n>, or pass --overwrite true to replace them"
        )


def _run_folder(output: Path, version: int | None) -> Path:
    """Make ``output/version_<n>``: ``version``'s, or the next free one (a new folder: no previous run's files)."""
    if version is not None:
        folder = output / f"version_{version}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    output.mkdir(parents=True, exist_ok=True)
    taken = [int(path.name[8:]) for path in output.glob("version_*") if path.name[8:].isdigit()]
    version = max(taken, default=-1) + 1
    while True:  # another run may take the same number meanwhile: mkdir claims it or fails
        try:
            (output / f"version_{version}").mkdir()
            return output / f"version_{version}"
        except FileExistsError:
            version += 1


def _write_text(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)  # atomic: an interrupted run leaves the previous version of the file, never half


def _uids() -> tuple[str, str]:
    from pydicom.uid import generate_uid

    return generate_uid(), generate_uid()


def _physics_record(physics: XRayPhysics) -> dict[str, Any]:
    spectrum = physics.spectrum
    return {
        "class_path": f"{type(physics).__module__}.{type(physics).__qualname__}",
        "kvp": float(spectrum.kvp),
        "filtration_mm_al": float(spectrum.filtration_mm_al),
        "mean_energy_kev": spectrum.mean_energy_kev,
        "materials": list(physics.materials),
        "photons_per_pixel": physics.photons_per_pixel,
        "air_signal": physics.air_signal,
        "detector": physics.detector,
        "scatter_to_primary": physics.scatter_to_primary,
        "scatter_sigma_mm": physics.scatter_sigma_mm,
        "blur_mm": physics.blur_mm,
        "noise": physics.noise,
        "heel": physics.heel,
        "collimation": None if physics.collimation is None else list(physics.collimation),
        "output": physics.output,
    }


def _physics_tags(physics: XRayPhysics) -> dict[str, Any]:
    """DICOM tags of the acquisition: the tube filtration and the detector type."""
    filtration = f"{physics.spectrum.filtration_mm_al:.6g}"
    return {
        "FilterMaterial": "ALUMINUM",
        "FilterThicknessMinimum": filtration,
        "FilterThicknessMaximum": filtration,
        "DetectorType": "SCINTILLATOR",
    }


class _NoProgress:
    """The progress bar's interface, showing nothing."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int) -> int:
        return 0

    def advance(self, task: int) -> None:
        return None


def _progress(show: bool) -> Any:
    if not show:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


def _print_summary(record: dict[str, Any], folder: Path, formats: list[str]) -> None:
    from rich.console import Console

    console = Console(width=max(Console().width, 120))
    console.print(
        f"drreg simulate: {len(record['images'])} X-ray(s) ({', '.join(formats)}) and poses.json in {folder}",
        markup=False,
    )
    if "dicom" in formats:
        first = folder / record["images"][0]["files"]["dicom"]
        console.print(
            f"register one, with the detector from its tags: drreg register --config recipes/register.yaml "
            f"--data.targets '[{first}]' --data.negative_log {str(record['read_with']['negative_log']).lower()} "
            "--data.imaging.sdd null --data.imaging.height null --data.imaging.delx null "
            f"--data.true_poses '[{record['true_poses'][0]}]'",
            soft_wrap=True,
            markup=False,
        )


def simulate_parser() -> ArgumentParser:
    """The parser of ``drreg simulate``: ``--config`` (a YAML recipe), ``--print_config`` and one flag per argument
    of :func:`simulate` (``--physics.init_args.noise``, ``--imaging.height``, ``--random_poses.n``, ...)."""
    parser = ArgumentParser(prog="drreg simulate", description=COMMANDS["simulate"])
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML recipe (recipes/simulate.yaml)")
    parser.add_function_arguments(simulate, as_group=False, skip={"save_config"})
    return parser


def simulate_command(args: Sequence[str] | None = None) -> dict[str, Any]:
    """``drreg simulate``: parse ``args`` (``None``: ``sys.argv``), run :func:`simulate`, save the config.

    Example:
        >>> simulate_command(["--config", "recipes/simulate.yaml", "--imaging.height", "64"])  # doctest: +SKIP
    """
    parser = simulate_parser()
    config = parser.parse_args(None if args is None else list(args))
    overwrite = bool(config.overwrite)
    # --overwrite is an order to this run, not a setting: config.yaml records false, so a re-run replaces nothing.
    config.overwrite = False
    saved = parser.dump(config)
    physics, config.physics = _physics(config.get("physics")), None
    init = parser.instantiate(config)
    names = [
        name for name in inspect.signature(simulate).parameters if name not in ("physics", "overwrite", "save_config")
    ]
    arguments = {name: init.get(name) for name in names}
    return simulate(physics, **arguments, overwrite=overwrite, save_config=saved)


def _physics(spec: Any) -> XRayPhysics | None:
    """The physics of its ``class_path``/``init_args`` (which the parser has checked): built here, so that a value
    its constructor refuses is one error naming it, not jsonargparse's list of the ``XRayPhysics | None`` subtypes."""
    if spec is None:
        return None
    module, _, name = str(spec.class_path).rpartition(".")
    arguments = {} if spec.get("init_args") is None else spec.init_args.as_dict()
    try:
        return getattr(importlib.import_module(module), name)(**arguments)
    except ValueError as error:
        raise ValueError(f"physics ({spec.class_path}): {error}") from error
