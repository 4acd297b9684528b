"""Tests for drreg.volume: read(), hu_to_density(), labels and label ids, orientations and the example chest CT.

The checks of damaged files are tested in test_volume_files.py and test_dicom.py, the phantom's build in
test_phantom.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch
import torchio as tio

from drreg._phantom import chest_phantom_arrays
from drreg.drr import DRR
from drreg.volume import MAX_LABEL_ID, hu_to_density, label_channels, load_example_ct, read, reorient_matrix
from tests._ct_files import hu_volume

GROUPS = {"skeleton", "ribs", "vertebrae", "cardiac", "organs", "muscles"}


# ---------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ct_path(reference_dir: Path) -> Path:
    return reference_dir / "phantom_ct.nii.gz"


@pytest.fixture(scope="session")
def mask_path(reference_dir: Path) -> Path:
    return reference_dir / "phantom_mask.nii.gz"


@pytest.fixture(scope="session")
def example() -> tio.Subject:
    """The example phantom, built once per session (and cached in-process by drreg.volume)."""
    return load_example_ct()


def _centre(image: tio.Image) -> np.ndarray:
    index = (np.array(image.spatial_shape) - 1) / 2.0
    return image.affine[:3, :3] @ index + image.affine[:3, 3]


def _write_dicom_series(image: sitk.Image, folder: Path) -> None:
    """Write a 3D int16 image as one DICOM file per slice (identity direction) with SimpleITK."""
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    study, series = "1.2.826.0.1.3680043.2.1125.1", "1.2.826.0.1.3680043.2.1125.2"
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "CT",
            "0020|000d": study,
            "0020|000e": series,
            "0008|0018": f"{series}.{k + 1}",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{c:.6f}" for c in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0018|0050": f"{image.GetSpacing()[2]:.6f}",
        }
        for key, value in tags.items():
            piece.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(piece)


# ---------------------------------------------------------------------------------------------------------
# Density and centring against the DiffDRR fixtures
# ---------------------------------------------------------------------------------------------------------


def test_density_and_affine_match_reference(ct_path: Path, reference: dict[str, np.ndarray]) -> None:
    subject = read(ct_path)
    density = subject.density.data
    assert density.dtype == torch.float32
    assert density.shape == (1, *reference["density/density"].shape)
    np.testing.assert_allclose(density[0].numpy(), reference["density/density"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(subject.density.affine, reference["density/affine"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(subject.volume.affine, reference["density/affine"], rtol=0, atol=1e-6)


def test_hu_to_density_matches_reference_per_dtype(
    ct_path: Path, reference: dict[str, np.ndarray], dtype: torch.dtype
) -> None:
    hu = tio.ScalarImage(ct_path).data[0]
    density = hu_to_density(hu, dtype=dtype)
    assert density.dtype == dtype
    # The fixture was computed in float32: float64 math differs by float32 rounding (~3e-8) only.
    np.testing.assert_allclose(density.numpy(), reference["density/density"], rtol=0, atol=1e-6)


def test_hu_to_density_air_is_soft_tissue_minimum() -> None:
    hu = torch.tensor([-1000.0, -850.0, -800.0, -799.0, -100.0, 40.0, 350.0, 351.0, 1000.0])
    density = hu_to_density(hu)
    # Air (<= -800) takes the soft-tissue minimum (-799), so it maps to 0 like that voxel.
    assert torch.equal(density[:4], torch.zeros(4))
    expected = (hu.clamp_min(-799.0) + 799.0) / (1000.0 + 799.0)
    torch.testing.assert_close(density, expected)


@pytest.mark.parametrize("multiplier", [0.0, 1.0, 2.5])
def test_hu_to_density_bone_multiplier(multiplier: float) -> None:
    hu = torch.tensor([-1000.0, -500.0, 0.0, 100.0, 400.0, 1000.0])
    v = torch.where(hu <= -800, torch.tensor(-500.0), hu)
    v = torch.where(hu > 350, v * multiplier, v)
    expected = (v - v.min()) / (v - v.min()).max()
    torch.testing.assert_close(hu_to_density(hu, multiplier), expected)


def test_hu_to_density_constant_volume_is_zero() -> None:
    assert torch.equal(hu_to_density(torch.full((2, 2, 2), 40.0)), torch.zeros(2, 2, 2))


def test_hu_to_density_on_device(ct_path: Path, device: torch.device) -> None:
    hu = tio.ScalarImage(ct_path).data[0]
    density = hu_to_density(hu.to(device), 2.5)
    assert density.device.type == device.type
    torch.testing.assert_close(density.cpu(), hu_to_density(hu, 2.5), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("volume", "kwargs", "error", "match"),
    [
        (torch.full((3, 3, 3), -1000.0), {}, ValueError, "no soft-tissue voxel"),
        (torch.full((3, 3, 3), 1000.0), {}, ValueError, "no soft-tissue voxel"),
        (torch.tensor([0.0, float("nan")]), {}, ValueError, "volume must be finite"),
        (torch.zeros(3), {"bone_attenuation_multiplier": -1.0}, ValueError, "bone_attenuation_multiplier"),
        (torch.zeros(3), {"bone_attenuation_multiplier": float("nan")}, ValueError, "bone_attenuation_multiplier"),
        (torch.zeros(3), {"dtype": torch.float16}, ValueError, "dtype"),
        (np.zeros(3), {}, TypeError, "volume must be a torch.Tensor"),
    ],
)
def test_hu_to_density_errors(volume, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        hu_to_density(volume, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# Inputs: file formats, DICOM, tensors
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd"])
def test_read_file_formats(ct_path: Path, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"ct{suffix}"
    sitk.WriteImage(sitk.ReadImage(str(ct_path)), str(path))
    expected = read(ct_path, center_volume=False)
    subject = read(path, center_volume=False)
    assert subject.volume.data.dtype == torch.int16
    assert torch.equal(subject.volume.data, expected.volume.data)
    assert torch.equal(subject.density.data, expected.density.data)
    np.testing.assert_allclose(subject.volume.affine, expected.volume.affine, atol=1e-5)


def test_read_dicom_series(ct_path: Path, tmp_path: Path) -> None:
    hu_zyx = sitk.GetArrayFromImage(sitk.ReadImage(str(ct_path)))
    image = sitk.GetImageFromArray(hu_zyx)
    image.SetSpacing((2.0, 2.5, 3.0))
    image.SetOrigin((10.0, -20.0, 30.0))  # LPS, as DICOM stores it
    _write_dicom_series(image, tmp_path / "series")
    subject = read(tmp_path / "series", center_volume=False)
    assert torch.equal(subject.volume.data[0], torch.from_numpy(hu_zyx.transpose(2, 1, 0).copy()))
    np.testing.assert_allclose(subject.volume.spacing, (2.0, 2.5, 3.0), atol=1e-5)
    # torchio reports RAS+: LPS x and y flip sign.
    expected = np.diag([-2.0, -2.5, 3.0, 1.0])
    expected[:3, 3] = (-10.0, 20.0, 30.0)
    np.testing.assert_allclose(subject.volume.affine, expected, atol=1e-4)


@pytest.mark.parametrize("leading", [False, True])
@pytest.mark.parametrize("kind", ["tensor", "numpy"])
def test_read_tensor_with_affine(ct_path: Path, leading: bool, kind: str) -> None:
    image = tio.ScalarImage(ct_path)
    data = image.data if leading else image.data[0]
    data = data.numpy() if kind == "numpy" else data
    subject = read(data, affine=image.affine, center_volume=False)
    expected = read(ct_path, center_volume=False)
    assert torch.equal(subject.density.data, expected.density.data)
    np.testing.assert_allclose(subject.volume.affine, image.affine)


def test_read_tensor_default_affine_is_identity() -> None:
    hu = torch.zeros(4, 5, 6)
    subject = read(hu, center_volume=False)
    np.testing.assert_array_equal(subject.volume.affine, np.eye(4))
    centred = read(hu)
    np.testing.assert_allclose(centred.volume.affine[:3, 3], [-1.5, -2.0, -2.5])


def test_read_torchio_image_is_not_modified(ct_path: Path) -> None:
    image = tio.ScalarImage(ct_path)
    before = image.affine.copy()
    read(image)
    np.testing.assert_array_equal(image.affine, before)


def test_read_tensor_labelmap_takes_volume_affine(ct_path: Path, mask_path: Path) -> None:
    labels = tio.LabelMap(mask_path).data[0]
    subject = read(ct_path, labelmap=labels, center_volume=False)
    np.testing.assert_allclose(subject.mask.affine, subject.volume.affine)


# ---------------------------------------------------------------------------------------------------------
# Labels, orientation, centring, extras, transform
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [[3, 4], (3, 4), 3, torch.tensor([3, 4])])
def test_labels_multiply_by_indicator(ct_path: Path, mask_path: Path, labels) -> None:
    full = read(ct_path, labelmap=mask_path)
    subject = read(ct_path, labelmap=mask_path, labels=labels)
    ids = torch.as_tensor(labels).flatten()
    keep = torch.isin(full.mask.data, ids)
    assert torch.equal(subject.density.data, full.density.data * keep)
    assert torch.equal(subject.volume.data, full.volume.data * keep)
    assert torch.equal(subject.mask.data, full.mask.data * keep)
    assert set(torch.unique(subject.mask.data).tolist()) <= {0, *ids.tolist()}


def test_labels_absent_warns(ct_path: Path, mask_path: Path) -> None:
    with pytest.warns(UserWarning, match="none of labels"):
        subject = read(ct_path, labelmap=mask_path, labels=[99])
    assert not subject.density.data.any()


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [("AP", (1.0, -3.0, 2.0)), ("PA", (1.0, 3.0, 2.0)), (None, (1.0, 2.0, 3.0))],
)
def test_orientation_reorient(ct_path: Path, orientation, expected) -> None:
    subject = read(ct_path, orientation=orientation)
    assert subject.orientation == orientation
    assert subject.reorient.dtype == torch.float32  # DiffDRR's dtype (the entries are 0 and +-1, exact)
    assert subject.reorient.shape == (4, 4)
    point = torch.tensor([1.0, 2.0, 3.0, 1.0])
    assert torch.equal(subject.reorient @ point, torch.tensor([*expected, 1.0]))
    assert torch.equal(reorient_matrix(orientation), subject.reorient.double())


FIDUCIALS = torch.tensor([[[0.0, 0.0, 0.0], [10.0, 20.0, 30.0]]])


@pytest.mark.parametrize("center_volume", [True, False])
@pytest.mark.parametrize("name", ["volume", "density", "mask"])
def test_center_volume(ct_path: Path, mask_path: Path, center_volume: bool, name: str) -> None:
    original = tio.ScalarImage(ct_path).affine
    subject = read(ct_path, labelmap=mask_path, center_volume=center_volume, fiducials=FIDUCIALS)
    image = subject[name]
    np.testing.assert_array_equal(image.affine[:3, :3], original[:3, :3])
    if center_volume:
        np.testing.assert_allclose(_centre(image), 0.0, atol=1e-9)
    else:
        np.testing.assert_array_equal(image.affine, original)


@pytest.mark.parametrize("center_volume", [True, False])
def test_center_volume_moves_fiducials(ct_path: Path, mask_path: Path, center_volume: bool) -> None:
    fiducials = FIDUCIALS
    subject = read(ct_path, labelmap=mask_path, center_volume=center_volume, fiducials=fiducials)
    shift = -_centre(tio.ScalarImage(ct_path)) if center_volume else np.zeros(3)
    assert subject.fiducials.shape == (1, 2, 3)
    assert subject.fiducials.dtype == fiducials.dtype  # a floating tensor keeps its dtype, as in DiffDRR
    np.testing.assert_allclose(subject.fiducials[0].numpy(), fiducials[0].numpy() + shift, rtol=1e-6)


def test_extra_kwargs_land_on_subject(ct_path: Path, reference_dir: Path) -> None:
    structures = pd.read_csv(reference_dir / "phantom_structures.csv")
    subject = read(ct_path, structures=structures, patient="phantom", spacing_note=3)
    assert subject.structures is structures
    assert subject["patient"] == "phantom"
    assert subject.spacing_note == 3
    assert subject.structures.query("group == 'skeleton'")["id"].tolist() == [3, 4]


def test_subject_transform_applies_before_centring(ct_path: Path, reference_dir: Path) -> None:
    structures = pd.read_csv(reference_dir / "phantom_structures.csv")
    subject = read(ct_path, subject_transform=tio.Crop((2, 4, 0, 0, 1, 1)), structures=structures)
    assert subject.structures.equals(structures)
    assert subject.volume.spatial_shape == (42, 40, 30)
    assert subject.density.spatial_shape == (42, 40, 30)
    np.testing.assert_allclose(_centre(subject.density), 0.0, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.nii.gz"
    with pytest.raises(FileNotFoundError, match="nowhere.nii.gz"):
        read(path)


def test_missing_labelmap_file(ct_path: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="labelmap file not found"):
        read(ct_path, labelmap=tmp_path / "mask.nii.gz")


def test_text_file_renamed_nifti(tmp_path: Path) -> None:
    path = tmp_path / "fake.nii.gz"
    path.write_text("not an image")
    with pytest.raises(ValueError, match="volume must be a 3D CT volume"):
        read(path)


@pytest.mark.parametrize("channels", [1, 3])
def test_png_is_rejected(tmp_path: Path, channels: int) -> None:
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, size=(20, 30, channels)).astype(np.uint8)
    path = tmp_path / "xray.png"
    Image.fromarray(pixels.squeeze()).save(path)
    with pytest.raises(ValueError, match="volume must be a 3D CT volume"):
        read(path)


@pytest.mark.parametrize(
    ("volume", "match"),
    [
        (torch.zeros(20, 30), "volume must be a 3D CT volume"),
        (torch.zeros(2, 4, 4, 4), "volume must be a 3D CT volume"),
        (torch.zeros(4, 4, 1), "volume must be a 3D CT volume"),
    ],
)
def test_bad_tensor_shapes(volume: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read(volume)


def test_bad_volume_type() -> None:
    with pytest.raises(TypeError, match="volume must be a path"):
        read(42)


@pytest.mark.parametrize("orientation", ["LR", "ap", ""])
def test_unknown_orientation(ct_path: Path, orientation: str) -> None:
    with pytest.raises(ValueError, match="orientation.*'AP', 'PA', None"):
        read(ct_path, orientation=orientation)


@pytest.mark.parametrize("multiplier", [-0.5, float("nan"), float("inf")])
def test_bad_bone_multiplier(ct_path: Path, multiplier: float) -> None:
    with pytest.raises(ValueError, match="bone_attenuation_multiplier"):
        read(ct_path, bone_attenuation_multiplier=multiplier)


def test_labels_without_labelmap(ct_path: Path) -> None:
    with pytest.raises(ValueError, match="labels=.*requires a labelmap"):
        read(ct_path, labels=[3, 4])


def test_labelmap_shape_mismatch(ct_path: Path) -> None:
    with pytest.raises(ValueError, match="labelmap must have the volume's spatial shape"):
        read(ct_path, labelmap=torch.zeros(10, 10, 10, dtype=torch.uint8))


def test_labelmap_affine_mismatch(ct_path: Path, mask_path: Path) -> None:
    mask = tio.LabelMap(mask_path)
    affine = mask.affine.copy()
    affine[0, 3] += 5.0  # 5 mm off
    with pytest.raises(ValueError, match="labelmap affine must match"):
        read(ct_path, labelmap=tio.LabelMap(tensor=mask.data, affine=affine))


def test_fractional_labelmap(ct_path: Path, mask_path: Path) -> None:
    data = tio.LabelMap(mask_path).data.float() + 0.5
    with pytest.raises(ValueError, match="labelmap must hold integer label ids"):
        read(ct_path, labelmap=data)


@pytest.mark.parametrize(
    ("affine", "match"),
    [(np.eye(3), "affine must be"), (np.full((4, 4), np.nan), "affine must be finite"), (np.zeros((4, 4)), "affine")],
)
def test_bad_affine(affine: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read(torch.zeros(4, 4, 4), affine=affine)


def test_affine_with_file_input(ct_path: Path) -> None:
    with pytest.raises(ValueError, match="affine applies only to tensor"):
        read(ct_path, affine=np.eye(4))


def test_reserved_extra_keyword(ct_path: Path) -> None:
    with pytest.raises(ValueError, match="clash with reserved"):
        read(ct_path, density=1)


def test_bad_fiducials(ct_path: Path) -> None:
    with pytest.raises(ValueError, match="fiducials must be"):
        read(ct_path, fiducials=torch.zeros(2, 4))


def test_empty_labels(ct_path: Path, mask_path: Path) -> None:
    with pytest.raises(ValueError, match="labels must name at least one"):
        read(ct_path, labelmap=mask_path, labels=[])


# ---------------------------------------------------------------------------------------------------------
# The example phantom
# ---------------------------------------------------------------------------------------------------------


def test_example_subject_content(example: tio.Subject) -> None:
    assert example.volume.data.dtype == torch.int16
    assert example.density.data.dtype == torch.float32
    assert isinstance(example.mask, tio.LabelMap)
    assert example.orientation == "AP"
    assert torch.equal(example.reorient, reorient_matrix("AP"))
    nx, ny, nz = example.volume.spatial_shape
    assert nx >= 256 and ny >= 256 and nz >= 120
    sx, sy, sz = example.volume.spacing
    assert 0.8 <= sx <= 1.0 and 0.8 <= sy <= 1.0 and 2.0 <= sz <= 2.5
    assert example.volume.orientation == ("R", "A", "S")
    np.testing.assert_allclose(_centre(example.volume), 0.0, atol=1e-9)
    assert float(example.density.data.min()) == 0.0 and float(example.density.data.max()) == 1.0


def test_example_structures_table(example: tio.Subject) -> None:
    table = example.structures
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["group", "structure", "id"]
    assert set(table["group"]) == GROUPS
    assert table["id"].tolist() == list(range(1, len(table) + 1))
    assert table["structure"].is_unique
    present = set(torch.unique(example.mask.data).tolist())
    assert present == {0, *table["id"].tolist()}  # every structure is in the labelmap, nothing else
    ribs = table.query("group == 'ribs'")["structure"].tolist()
    assert sorted(ribs) == sorted([f"rib_{side}_{k}" for side in ("left", "right") for k in range(1, 13)])
    assert len(table.query("group == 'vertebrae'")) >= 13


def test_example_labels_keep_only_those(example: tio.Subject) -> None:
    table = example.structures
    bones = table.query("group in ['skeleton', 'ribs', 'vertebrae']")["id"].tolist()
    subject = load_example_ct(labels=bones)
    keep = torch.isin(example.mask.data, torch.tensor(bones, dtype=example.mask.data.dtype))
    assert set(torch.unique(subject.mask.data).tolist()) <= {0, *bones}
    assert torch.equal(subject.density.data, example.density.data * keep)
    assert subject.structures.equals(table)


def _world_centroid(subject: tio.Subject, label_id: int) -> np.ndarray:
    index = torch.nonzero(subject.mask.data[0] == label_id).double().mean(0).numpy()
    return subject.mask.affine[:3, :3] @ index + subject.mask.affine[:3, 3]


def _hu(subject: tio.Subject, names: list[str]) -> torch.Tensor:
    table = subject.structures
    ids = torch.tensor(table[table["structure"].isin(names)]["id"].tolist(), dtype=subject.mask.data.dtype)
    return subject.volume.data[torch.isin(subject.mask.data, ids)].float()


def test_example_hu_ranges(example: tio.Subject) -> None:
    table = example.structures
    ribs = table.query("group == 'ribs'")["structure"].tolist()
    assert float(_hu(example, ["lung_left", "lung_right"]).median()) < -500
    assert float(_hu(example, ribs).median()) > 300
    assert 0 < float(_hu(example, ["heart"]).median()) < 100
    assert 30 < float(_hu(example, ["liver"]).median()) < 90
    assert 40 < float(_hu(example, ["intervertebral_discs"]).median()) < 130
    assert float(_hu(example, ["vertebrae_T6"]).median()) > 150
    assert float(_hu(example, ["trachea"]).median()) < -500
    outside = example.volume.data[0, :8, :8].float()
    assert float(outside.mean()) < -950


def test_example_anatomy_sides(example: tio.Subject) -> None:
    ids = dict(zip(example.structures["structure"], example.structures["id"], strict=True))
    assert _world_centroid(example, ids["heart"])[0] < 0  # patient's left (RAS+: +x is right)
    assert _world_centroid(example, ids["liver"])[0] > 0
    assert _world_centroid(example, ids["spleen"])[0] < 0
    assert _world_centroid(example, ids["lung_left"])[0] < 0 < _world_centroid(example, ids["lung_right"])[0]
    assert _world_centroid(example, ids["rib_left_5"])[0] < 0 < _world_centroid(example, ids["rib_right_5"])[0]
    assert _world_centroid(example, ids["vertebrae_T6"])[1] < 0  # posterior
    assert _world_centroid(example, ids["sternum"])[1] > 0  # anterior
    heights = [_world_centroid(example, ids[f"vertebrae_T{k}"])[2] for k in range(1, 13)]
    assert heights == sorted(heights, reverse=True)  # T1 on top


def test_example_projection_looks_like_a_chest(example: tio.Subject) -> None:
    ids = dict(zip(example.structures["structure"], example.structures["id"], strict=True))
    projection = example.density.data[0].sum(dim=1)  # (X, Z): parallel AP projection
    lungs = torch.isin(example.mask.data[0], torch.tensor([ids["lung_left"], ids["lung_right"]], dtype=torch.uint8))
    lung_columns = lungs.sum(dim=1) > 60  # thick lung along the ray
    spine_column = projection[178:182].mean()
    assert projection[lung_columns].mean() < 0.8 * spine_column  # lung fields darker than the mediastinum


def test_example_returns_fresh_subjects(example: tio.Subject) -> None:
    first = load_example_ct(center_volume=False)
    first.volume.data[...] = 0
    second = load_example_ct(orientation="PA", bone_attenuation_multiplier=2.5)
    assert torch.equal(second.volume.data, example.volume.data)
    assert second.orientation == "PA"
    assert not torch.equal(second.density.data, example.density.data)
    assert chest_phantom_arrays.cache_info().hits >= 2


def test_bad_labelmap_shape_names_labelmap(ct_path: Path) -> None:
    with pytest.raises(ValueError, match="labelmap must be a 3D label volume"):
        read(ct_path, labelmap=torch.zeros(48, 40))


# ---------------------------------------------------------------------------------------------------------
# Label ids that cannot be rendered as channels (issue 10)
# ---------------------------------------------------------------------------------------------------------


def _subject_with_mask(mask: torch.Tensor) -> tio.Subject:
    """A subject from read() whose mask is then swapped for one holding whatever ids the test needs."""
    hu = torch.rand(tuple(mask.shape), generator=torch.Generator().manual_seed(0)) * 1000 - 500
    subject = read(hu, affine=np.diag([2.0, 2.0, 2.0, 1.0]))
    subject["mask"] = tio.LabelMap(tensor=mask[None], affine=subject.volume.affine)
    subject.update_attributes()
    return subject


def _render_channels(subject: tio.Subject) -> torch.Tensor:
    drr = DRR(subject, sdd=400.0, height=8, delx=4.0, backend="torch")
    rotation = torch.zeros(1, 3)
    translation = torch.tensor([[0.0, 300.0, 0.0]])
    return drr(rotation, translation, parameterization="euler_angles", convention="ZXY", mask_to_channels=True)


def test_huge_label_id_refused_issue10() -> None:
    # One voxel of id 10**6 made mask_to_channels build 1,000,001 dense channels (65 GB at 128 x 128).
    mask = torch.zeros(6, 5, 4, dtype=torch.int32)
    mask[2, 2, 2] = 1_000_000
    with pytest.raises(
        ValueError,
        match=r"mask must hold label ids <= MAX_LABEL_ID = 65535 .*got 1000000 .*1,000,001 channels.*consecutive",
    ):
        _render_channels(_subject_with_mask(mask))


@pytest.mark.parametrize("label_dtype", [torch.int16, torch.float32])
def test_negative_label_id_refused_issue10(label_dtype: torch.dtype) -> None:
    # Negative ids gave 0 channels (all negative) or dropped those voxels from every channel.
    mask = torch.ones(6, 5, 4, dtype=label_dtype)
    mask[0] = -1
    with pytest.raises(ValueError, match=r"subject's mask must hold label ids >= 0 .*got -1 in 20 voxel"):
        _render_channels(_subject_with_mask(mask))


def test_negative_labelmap_refused_by_read_issue10() -> None:
    # A CT passed as the labelmap (negative HU) was accepted as label ids.
    hu = torch.from_numpy(hu_volume()) - 1000
    lowest = int(hu.min())
    with pytest.raises(ValueError, match=rf"labelmap must hold label ids >= 0 .*got {lowest} in .*is it a CT"):
        read(hu, labelmap=hu)


def test_fractional_and_nan_label_ids_issue10() -> None:
    # NaN was reported as a "fractional" id and 1.5 without its value; both now say what and where.
    mask = torch.ones(6, 5, 4)
    mask[1, 1, 1] = 1.5
    with pytest.raises(ValueError, match=r"labelmap must hold integer label ids, got 1\.5 in 1 voxel.*nearest"):
        read(torch.zeros(6, 5, 4), labelmap=mask)
    mask[1, 1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"labelmap must be finite, got 1 NaN/inf value"):
        read(torch.zeros(6, 5, 4), labelmap=mask)


def test_negative_labels_argument_issue10() -> None:
    # labels=[-1] can never match a valid labelmap; say so rather than warn that nothing matched.
    with pytest.raises(ValueError, match=r"labels must be label ids >= 0, got \[3, -1\]"):
        read(torch.zeros(4, 4, 4), labelmap=torch.ones(4, 4, 4, dtype=torch.uint8), labels=[3, -1])


def test_label_channels_limit_issue10() -> None:
    # The limit is inclusive, and the channel count is max id + 1 (id 0 is background).
    assert label_channels(torch.tensor([0, 3, MAX_LABEL_ID])) == MAX_LABEL_ID + 1
    assert label_channels(torch.tensor([[0.0, 2.0]])) == 3
    with pytest.raises(ValueError, match=rf"got {MAX_LABEL_ID + 1} "):
        label_channels(torch.tensor([MAX_LABEL_ID + 1]))


HU_ISSUE10 = torch.tensor([[[824, -276], [-1407, 241]], [[-750, -939], [142, 402]]], dtype=torch.int16)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"affine": "identity"}, TypeError, "affine must be a .4, 4. matrix of real numbers, got 'identity'"),
        ({"affine": np.eye(4) * 1j}, TypeError, "affine must be .* of real numbers, got dtype complex128"),
        ({"fiducials": "origin"}, TypeError, "fiducials must be .* of real numbers, got 'origin'"),
        ({"labelmap": HU_ISSUE10.clamp(0, 3), "labels": "1"}, TypeError, "labels must be label ids of real numbers"),
        ({"labelmap": HU_ISSUE10.clamp(0, 3), "labels": [float("inf")]}, ValueError, "labels must be finite"),
        ({"center_volume": "False"}, ValueError, "center_volume must be True or False"),
        ({"bone_attenuation_multiplier": 1e300}, ValueError, "bone_attenuation_multiplier=1e\\+300 .* overflows"),
    ],
)
def test_read_names_bad_arguments_found_by_fuzzing_issue10(options: dict, error: type[Exception], match: str) -> None:
    # Text and complex affines, fiducials and labels failed deep in NumPy/torch (or dropped the imaginary part).
    with pytest.raises(error, match=match):
        read(HU_ISSUE10, **options)


@pytest.mark.parametrize("volume", [None, np.zeros((3, 3, 3), dtype=object)])
def test_read_names_a_volume_of_an_unknown_type_issue10(volume: object) -> None:
    # read(None, affine=...) blamed the affine, and an object array failed inside torch.as_tensor.
    with pytest.raises(TypeError, match="volume must"):
        read(volume, affine=np.eye(4))  # type: ignore[arg-type]


def test_finite_values_beyond_float32_are_named_as_such_issue10() -> None:
    # Finite float64 HU of 1e300 became inf in float32 and were reported as "must be finite, got NaN/inf".
    with pytest.raises(ValueError, match="volume holds values beyond the range of torch.float32 .* up to 1e\\+300"):
        read(torch.full((3, 3, 3), 1e300, dtype=torch.float64))
