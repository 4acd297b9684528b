"""Tests for drreg.losses: hand-computed values, invariances, sparse == dense, gradients, batching, errors; the loss
classes (one section each), the string shortcut, the deprecated ``ImageLoss``, and kornia parity of blur and Sobel."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jsonargparse
import kornia
import pytest
import torch
import torch.nn.functional as F

from drreg.losses import (
    LOSSES,
    GradientNCCLoss,
    ImageLoss,
    MSELoss,
    MultiscaleNCCLoss,
    NCCLoss,
    PatchNCCLoss,
    SimilarityLoss,
    gather_pixels,
    gradient_ncc,
    loss_from_name,
    mse,
    multiscale_ncc,
    ncc,
    patch_ncc,
    sample_patch_indices,
)
from drreg.losses._kernels import (
    gaussian_blur,
    global_ncc,
    patch_ncc_naive,
    sliding_patch_ncc,
    sobel,
    sparse_patch_ncc,
)
from tests._tolerances import ATOL, RTOL

# Every NCC-family similarity on dense images, by name (the window sizes fit an image of at least 6 x 7).
SIMILARITIES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ncc": lambda x, y: ncc(x, y),
    "patch_ncc": lambda x, y: patch_ncc(x, y, patch_size=3),
    "multiscale_ncc": lambda x, y: multiscale_ncc(x, y, patch_sizes=(None, 3), weights=(0.3, 0.7)),
    "gradient_ncc": lambda x, y: gradient_ncc(x, y, sigma=1.0),
    "gradient_patch_ncc": lambda x, y: gradient_ncc(x, y, sigma=0.7, patch_size=4),
}
# Every public function on dense images, as (B,)-valued callables (MSE included).
FUNCTIONS = {"mse": mse, **SIMILARITIES}
# Float32 similarities agree with float64 ones to this absolute tolerance (sums of ~100 products).
SIMILARITY_ATOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _randn(*shape: int, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)


def _image(dtype: torch.dtype, device: torch.device, seed: int = 0, shape=(2, 1, 6, 7)) -> torch.Tensor:
    """A smooth-ish random image (gradient NCCs are well defined) with variances large enough (~1e4) that the
    eps = 1e-8 variance floor moves similarities by less than 1e-10."""
    return (100.0 * _randn(*shape, seed=seed).cumsum(-1).cumsum(-2)).to(dtype=dtype, device=device)


# ------------------------------------------------------------------------------------- hand values


def test_mse_hand(device: torch.device, dtype: torch.dtype) -> None:
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 0.0]]]], dtype=dtype, device=device)
    target = torch.tensor([[[[1.0, 0.0], [3.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]], dtype=dtype, device=device)
    # (0 + 4 + 0 + 16) / 4 = 5 and 1.
    expected = torch.tensor([5.0, 1.0], dtype=dtype, device=device)
    torch.testing.assert_close(mse(pred, target), expected)


def test_ncc_hand_2x2(device: torch.device, dtype: torch.dtype) -> None:
    # Centred: x = (-1.5, -0.5, 0.5, 1.5), y = (-1.5, 0.5, -0.5, 1.5): cov = 1, var = 1.25 each, ncc = 0.8.
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=dtype, device=device)
    target = torch.tensor([[[[1.0, 3.0], [2.0, 4.0]]]], dtype=dtype, device=device)
    torch.testing.assert_close(ncc(pred, target), torch.tensor([0.8], dtype=dtype, device=device))


@pytest.mark.parametrize("name", list(SIMILARITIES))
def test_identical_is_one_and_negated_is_minus_one(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x = _image(dtype, device)
    ones = torch.ones(2, dtype=dtype, device=device)
    atol = SIMILARITY_ATOL[dtype]
    torch.testing.assert_close(SIMILARITIES[name](x, x), ones, atol=atol, rtol=0)
    torch.testing.assert_close(SIMILARITIES[name](x, -x), -ones, atol=atol, rtol=0)


def test_patch_ncc_hand(device: torch.device, dtype: torch.dtype) -> None:
    pred = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]], dtype=dtype, device=device)
    target = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]]]], dtype=dtype, device=device)
    # Left window identical (1); right window: x = (2, 3, 5, 6), y = (2, 3, 5, 0): cov = -0.5, var 2.5 and 3.25.
    expected = 0.5 * (1.0 - 0.5 / math.sqrt(2.5 * 3.25))
    torch.testing.assert_close(
        patch_ncc(pred, target, patch_size=2), torch.tensor([expected], dtype=dtype, device=device)
    )


def test_multiscale_weights_are_normalized(device: torch.device, dtype: torch.dtype) -> None:
    x, y = _image(dtype, device, seed=1), _image(dtype, device, seed=2)
    expected = 0.25 * ncc(x, y) + 0.75 * patch_ncc(x, y, 2)
    torch.testing.assert_close(multiscale_ncc(x, y, (None, 2), (1.0, 3.0)), expected)
    torch.testing.assert_close(multiscale_ncc(x, y, (0, 2), (2.0, 6.0)), expected)
    torch.testing.assert_close(multiscale_ncc(x, y, (None, 2)), 0.5 * ncc(x, y) + 0.5 * patch_ncc(x, y, 2))


# ------------------------------------------------------------------------------------------ oracles


@pytest.mark.parametrize("patch_size", [1, 2, 3, 6])
@pytest.mark.parametrize("channels", [1, 3])
def test_patch_ncc_matches_unfold_reference(patch_size: int, channels: int, device, dtype) -> None:
    x = _image(dtype, device, seed=3, shape=(2, channels, 6, 7))
    y = _image(dtype, device, seed=4, shape=(2, channels, 6, 7)) + 0.3 * x
    expected = patch_ncc_naive(x.double(), y.double(), patch_size, 1e-8).to(dtype)
    torch.testing.assert_close(patch_ncc(x, y, patch_size), expected, atol=SIMILARITY_ATOL[dtype], rtol=0)


def test_patch_ncc_whole_image_is_global_ncc(device: torch.device, dtype: torch.dtype) -> None:
    x, y = _image(dtype, device, seed=5, shape=(2, 2, 5, 5)), _image(dtype, device, seed=6, shape=(2, 2, 5, 5))
    torch.testing.assert_close(patch_ncc(x, y, 5), ncc(x, y), atol=SIMILARITY_ATOL[dtype], rtol=0)


@pytest.mark.parametrize("patch_size", [None, 3])
def test_gradient_ncc_matches_kornia_filters(patch_size: int | None, device: torch.device) -> None:
    # Independent oracle: kornia's Gaussian blur and Sobel (both with replicated borders).
    x, y = _image(torch.float64, device, seed=7), _image(torch.float64, device, seed=8)

    def gradients(image: torch.Tensor) -> torch.Tensor:
        blurred = kornia.filters.gaussian_blur2d(image, (5, 5), (1.0, 1.0), border_type="replicate")
        return kornia.filters.spatial_gradient(blurred, mode="sobel", normalized=True)

    gx, gy = gradients(x), gradients(y)
    if patch_size is None:
        expected = 0.5 * (ncc(gx[:, :, 0], gy[:, :, 0]) + ncc(gx[:, :, 1], gy[:, :, 1]))
    else:
        expected = 0.5 * (patch_ncc(gx[:, :, 0], gy[:, :, 0], 3) + patch_ncc(gx[:, :, 1], gy[:, :, 1], 3))
    torch.testing.assert_close(gradient_ncc(x, y, sigma=1.0, patch_size=patch_size), expected)


# --------------------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("name", list(SIMILARITIES))
@pytest.mark.parametrize(("scale", "offset"), [(0.5, -2.0), (3.0, 5.0), (20.0, 1000.0)])
def test_invariant_to_affine_intensity(name: str, scale: float, offset: float, device, dtype) -> None:
    x, y = _image(dtype, device, seed=9), _image(dtype, device, seed=10)
    similarity = SIMILARITIES[name]
    reference = similarity(x, y)
    atol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(similarity(scale * x + offset, y), reference, atol=atol, rtol=0)
    torch.testing.assert_close(similarity(x, scale * y + offset), reference, atol=atol, rtol=0)


@pytest.mark.parametrize("name", list(SIMILARITIES))
def test_similarity_bounded(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x, y = _image(dtype, device, seed=11), _image(dtype, device, seed=12)
    values = SIMILARITIES[name](x, y)
    assert values.shape == (2,)
    assert bool((values.abs() <= 1.0 + 1e-6).all())


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_batch_elements_are_independent(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x, y = _image(dtype, device, seed=13, shape=(3, 2, 6, 7)), _image(dtype, device, seed=14, shape=(3, 2, 6, 7))
    batched = FUNCTIONS[name](x, y)
    separate = torch.cat([FUNCTIONS[name](x[i : i + 1], y[i : i + 1]) for i in range(3)])
    assert batched.shape == (3,)
    torch.testing.assert_close(batched, separate, atol=ATOL[dtype], rtol=RTOL[dtype])


@pytest.mark.parametrize("name", list(SIMILARITIES))
def test_constant_images_give_zero_not_nan(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x = torch.full((2, 1, 6, 7), 3.7, dtype=dtype, device=device, requires_grad=True)
    y = _image(dtype, device, seed=15)
    value = SIMILARITIES[name](x, y)
    value.sum().backward()
    torch.testing.assert_close(value.detach(), torch.zeros(2, dtype=dtype, device=device), atol=1e-5, rtol=0)
    assert bool(torch.isfinite(x.grad).all())
    assert bool(torch.isfinite(SIMILARITIES[name](x.detach(), x.detach())).all())


def test_flat_windows_score_zero_in_float32(device: torch.device) -> None:
    # A large flat background: float32 moment cancellation must not turn it into noise.
    x = torch.full((1, 1, 16, 16), 1000.0, device=device)
    x[..., 6:10, 6:10] += torch.arange(16.0, device=device).reshape(4, 4)
    expected = patch_ncc_naive(x.double(), (2.0 * x + 1.0).double(), 3, 1e-8).float()
    torch.testing.assert_close(patch_ncc(x, 2.0 * x + 1.0, 3), expected, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------- sparse pixels


@pytest.mark.parametrize("name", ["mse", "ncc"])
def test_sparse_all_pixels_equals_dense(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x, y = _image(dtype, device, seed=16, shape=(2, 2, 6, 7)), _image(dtype, device, seed=17, shape=(2, 2, 6, 7))
    indices = torch.randperm(42, generator=torch.Generator().manual_seed(0)).to(device)  # any order
    function = FUNCTIONS[name]
    sparse = function(gather_pixels(x, indices), gather_pixels(y, indices))
    torch.testing.assert_close(sparse, function(x, y), atol=SIMILARITY_ATOL[dtype], rtol=RTOL[dtype])


@pytest.mark.parametrize("patch_size", [1, 2, 4])
def test_sparse_patches_of_every_window_equal_dense(patch_size: int, device: torch.device, dtype) -> None:
    height, width = 6, 7
    x = _image(dtype, device, seed=18, shape=(2, 2, height, width))
    y = _image(dtype, device, seed=19, shape=(2, 2, height, width))
    offsets = torch.arange(patch_size)
    windows = [
        ((r + offsets[:, None]) * width + c + offsets[None, :]).reshape(-1)
        for r in range(height - patch_size + 1)
        for c in range(width - patch_size + 1)
    ]
    indices = torch.cat(windows).to(device)
    sparse = patch_ncc(gather_pixels(x, indices), gather_pixels(y, indices), patch_size)
    torch.testing.assert_close(sparse, patch_ncc(x, y, patch_size), atol=SIMILARITY_ATOL[dtype], rtol=0)


def test_sparse_patch_ncc_hand(device: torch.device, dtype: torch.dtype) -> None:
    # Two 2x2 patches: the first correlated (1), the second anticorrelated (-1): mean 0.
    pred = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]]], dtype=dtype, device=device)
    target = torch.tensor([[[2.0, 4.0, 6.0, 8.0, 4.0, 3.0, 2.0, 1.0]]], dtype=dtype, device=device)
    torch.testing.assert_close(patch_ncc(pred, target, 2), torch.zeros(1, dtype=dtype, device=device))


@pytest.mark.parametrize(("height", "width", "patch_size", "n_patches"), [(6, 7, 3, 5), (4, 4, 4, 2), (9, 5, 1, 7)])
def test_sample_patch_indices_whole_patches_inside(height: int, width: int, patch_size: int, n_patches: int, device):
    generator = torch.Generator().manual_seed(1)
    indices = sample_patch_indices(height, width, patch_size, n_patches, generator=generator, device=device)
    assert indices.shape == (n_patches * patch_size**2,)
    assert indices.dtype == torch.int64
    assert indices.device.type == torch.device(device).type
    assert int(indices.min()) >= 0
    assert int(indices.max()) < height * width
    rows, cols = (
        (indices // width).reshape(n_patches, patch_size, patch_size),
        (indices % width).reshape(n_patches, patch_size, patch_size),
    )
    offsets = torch.arange(patch_size, device=indices.device)
    # Each block of p² indices is a row-major p x p square.
    torch.testing.assert_close(rows - rows[:, :1, :1], offsets[None, :, None].expand_as(rows))
    torch.testing.assert_close(cols - cols[:, :1, :1], offsets[None, None, :].expand_as(cols))


def test_sample_patch_indices_reproducible() -> None:
    first = sample_patch_indices(20, 30, 5, 4, generator=torch.Generator().manual_seed(3))
    second = sample_patch_indices(20, 30, 5, 4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_gather_pixels_shared_and_per_element(device: torch.device, dtype: torch.dtype) -> None:
    image = torch.arange(2 * 2 * 3 * 4, dtype=dtype, device=device).reshape(2, 2, 3, 4)
    shared = torch.tensor([11, 0, 5], device=device)
    expected = image.reshape(2, 2, 12)[:, :, [11, 0, 5]]
    torch.testing.assert_close(gather_pixels(image, shared), expected)
    per_element = torch.tensor([[1, 2], [3, 4]], device=device)
    expected = torch.stack([image[0].reshape(2, 12)[:, [1, 2]], image[1].reshape(2, 12)[:, [3, 4]]])
    torch.testing.assert_close(gather_pixels(image, per_element), expected)
    torch.testing.assert_close(gather_pixels(image, shared[None]), gather_pixels(image, shared))


# ------------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradcheck_dense(name: str) -> None:
    x = _image(torch.float64, "cpu", seed=20, shape=(2, 2, 6, 7)).requires_grad_()
    y = _image(torch.float64, "cpu", seed=21, shape=(2, 2, 6, 7)).requires_grad_()
    # fast_mode checks random projections of the Jacobian: the full one costs 2 x 168 evaluations per input.
    assert torch.autograd.gradcheck(FUNCTIONS[name], (x, y), fast_mode=True)


@pytest.mark.parametrize("name", ["mse", "ncc", "patch_ncc"])
def test_gradcheck_sparse(name: str) -> None:
    x = _randn(2, 2, 3 * 4, seed=22).requires_grad_()
    y = _randn(2, 2, 3 * 4, seed=23).requires_grad_()
    function = {"mse": mse, "ncc": ncc, "patch_ncc": lambda a, b: patch_ncc(a, b, 2)}[name]
    assert torch.autograd.gradcheck(function, (x, y))


def test_gradcheck_gather_pixels() -> None:
    image = _randn(2, 1, 3, 4, seed=24).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: gather_pixels(z, torch.tensor([[0, 5, 5], [11, 2, 3]])), (image,))


# --------------------------------------------------------------------------------- compiled == eager


@pytest.mark.parametrize("kernel", ["global", "sliding", "sparse"])
def test_compiled_matches_eager(kernel: str, device: torch.device) -> None:
    function = {
        "global": lambda x, y: global_ncc(x, y, 1e-8),
        "sliding": lambda x, y: sliding_patch_ncc(x, y, 3, 1e-8),
        "sparse": lambda x, y: sparse_patch_ncc(x.flatten(2)[..., :36], y.flatten(2)[..., :36], 3, 1e-8),
    }[kernel]
    x, y = _image(torch.float64, device, seed=25), _image(torch.float64, device, seed=26)
    compiled = torch.compile(function, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, y), function(x, y), atol=1e-15, rtol=0)


# -------------------------------------------------------------------------------------- ImageLoss

# ImageLoss is deprecated (it warns); these tests keep it working for existing users.
DEPRECATED_IMAGE_LOSS = pytest.mark.filterwarnings("ignore:ImageLoss.*is deprecated:DeprecationWarning")


@DEPRECATED_IMAGE_LOSS
@pytest.mark.parametrize(
    ("name", "kwargs", "similarity"),
    [
        ("ncc", {}, lambda x, y: ncc(x, y)),
        ("patch_ncc", {"patch_size": 3}, lambda x, y: patch_ncc(x, y, 3)),
        ("multiscale_ncc", {"patch_sizes": (None, 3), "weights": (0.3, 0.7)}, SIMILARITIES["multiscale_ncc"]),
        ("gradient_ncc", {"sigma": 0.7, "patch_size": 4}, SIMILARITIES["gradient_patch_ncc"]),
    ],
)
def test_image_loss_is_one_minus_similarity(name: str, kwargs: dict, similarity, device, dtype) -> None:
    x, y = _image(dtype, device, seed=27), _image(dtype, device, seed=28)
    loss = ImageLoss(name, **kwargs)
    torch.testing.assert_close(loss(x, y), 1.0 - similarity(x, y))
    torch.testing.assert_close(loss.similarity(x, y), similarity(x, y))


@DEPRECATED_IMAGE_LOSS
def test_image_loss_mse_and_defaults(device: torch.device, dtype: torch.dtype) -> None:
    x, y = _image(dtype, device, seed=29), _image(dtype, device, seed=30)
    torch.testing.assert_close(ImageLoss("mse")(x, y), mse(x, y))
    torch.testing.assert_close(ImageLoss()(x, y), 1.0 - ncc(x, y))
    assert set(LOSSES) == {"mse", "ncc", "patch_ncc", "multiscale_ncc", "gradient_ncc"}
    assert "patch_ncc" in repr(ImageLoss("patch_ncc", patch_size=3))


@DEPRECATED_IMAGE_LOSS
@pytest.mark.parametrize("name", ["mse", "ncc", "patch_ncc"])
def test_image_loss_sparse(name: str, device: torch.device) -> None:
    x, y = _randn(2, 1, 8, device=device, seed=31), _randn(2, 1, 8, device=device, seed=32)
    loss = ImageLoss(name, patch_size=2)
    assert loss(x, y).shape == (2,)


# ------------------------------------------------------------------------------------------ errors


def test_shape_mismatch_message() -> None:
    with pytest.raises(ValueError, match=r"pred \(2, 1, 8, 8\) and target \(2, 1, 8, 9\) must have the same shape"):
        ncc(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9))


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("argument", ["pred", "target"])
def test_nan_names_the_argument(name: str, argument: str) -> None:
    x, y = _image(torch.float32, "cpu"), _image(torch.float32, "cpu", seed=1)
    (x if argument == "pred" else y)[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match=f"{argument} must be finite"):
        FUNCTIONS[name](x, y)


@pytest.mark.parametrize("function", [mse, ncc, lambda x, y: patch_ncc(x, y, 1)])
def test_empty_pixel_set(function) -> None:
    with pytest.raises(ValueError, match="no pixels"):
        function(torch.zeros(2, 1, 0), torch.zeros(2, 1, 0))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: patch_ncc(x, x, 9),
        lambda x: multiscale_ncc(x, x, (None, 7)),
        lambda x: gradient_ncc(x, x, patch_size=8),
        lambda x: sample_patch_indices(6, 7, 7, 1),
    ],
)
def test_patch_larger_than_image(call) -> None:
    with pytest.raises(ValueError, match=r"patch_size \d is larger than the image \(6 x 7\)"):
        call(torch.zeros(1, 1, 6, 7))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: patch_ncc(x, x, 0), "patch_size must be a positive integer"),
        (lambda x: patch_ncc(x, x, 2.5), "patch_size must be a positive integer"),
        (lambda x: patch_ncc(x.flatten(2)[..., :10], x.flatten(2)[..., :10], 3), "not a multiple of patch_size"),
        (lambda x: ncc(x, x, eps=-1.0), "eps must be"),
        (lambda x: ncc(x[0, 0], x[0, 0]), r"must be \(B, C, H, W\) images or \(B, C, n\)"),
        (lambda x: multiscale_ncc(x.flatten(2), x.flatten(2), (None,)), r"dense images \(B, C, H, W\)"),
        (lambda x: gradient_ncc(x.flatten(2), x.flatten(2)), r"dense images \(B, C, H, W\)"),
        (lambda x: multiscale_ncc(x, x, ()), "non-empty sequence"),
        (lambda x: multiscale_ncc(x, x, (None, 3), (1.0,)), "one entry per patch size"),
        (lambda x: multiscale_ncc(x, x, (None, 3), (-1.0, 1.0)), "each weight must be a finite number >= 0, got -1.0"),
        (lambda x: gradient_ncc(x, x, sigma=-1.0), "sigma must be"),
        (lambda x: gather_pixels(x, torch.tensor([42])), r"indices must lie in \[0, 42\)"),
        (lambda x: gather_pixels(x, torch.tensor([], dtype=torch.int64)), "indices is empty"),
        (lambda x: gather_pixels(x, torch.zeros(3, 2, dtype=torch.int64)), r"indices must be \(n,\) or \(B, n\)"),
        (lambda x: gather_pixels(x[0], torch.tensor([0])), r"image must be \(B, C, H, W\)"),
        (lambda x: sample_patch_indices(6, 7, 2, 0), "n_patches must be a positive integer"),
        (lambda x: ImageLoss("ssim"), "unknown loss name 'ssim'; expected one of: 'mse', 'ncc', 'patch_ncc'"),
        (lambda x: ImageLoss("patch_ncc"), "needs a patch_size"),
        (lambda x: ImageLoss("multiscale_ncc", patch_sizes=(None, 3), weights=(1.0,)), "one entry per patch size"),
    ],
)
def test_value_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(1, 1, 6, 7))


@pytest.mark.parametrize(
    "call",
    [
        lambda: ncc(torch.zeros(1, 1, 2, 2), [[0.0]]),
        lambda: ncc(torch.zeros(1, 1, 2, 2, dtype=torch.int64), torch.zeros(1, 1, 2, 2, dtype=torch.int64)),
        lambda: gather_pixels(torch.zeros(1, 1, 2, 2), torch.tensor([0.0])),
    ],
)
def test_type_errors(call) -> None:
    with pytest.raises(TypeError):
        call()


def test_sparse_patches_rendered_by_the_drr_match_the_dense_image() -> None:
    # End to end: render sampled patches with reshape=False, read the target at the same indices.
    from drreg import DRR, read

    volume = torch.zeros(6, 6, 6)
    volume[1:5, 2:4, 1:5] = 800.0
    drr = DRR(read(volume), sdd=1020.0, height=12, delx=4.0, reshape=False)
    rotation, translation = torch.zeros(2, 3), torch.tensor([[0.0, 850.0, 0.0], [2.0, 850.0, -3.0]])
    kwargs = {"parameterization": "euler_angles", "convention": "ZXY"}
    image = drr(rotation, translation, **kwargs)
    target = drr(rotation, translation + 1.0, **kwargs)
    indices = sample_patch_indices(12, 12, 3, 4, generator=torch.Generator().manual_seed(0))
    sparse = drr(rotation, translation, indices=indices, **kwargs)
    torch.testing.assert_close(sparse, gather_pixels(image, indices))
    expected = sparse_patch_ncc(gather_pixels(image, indices), gather_pixels(target, indices), 3, 1e-8)
    torch.testing.assert_close(patch_ncc(sparse, gather_pixels(target, indices), 3), expected)


def test_gradcheck_patch_ncc_full_jacobian() -> None:
    x = _image(torch.float64, "cpu", seed=33, shape=(1, 1, 4, 5)).requires_grad_()
    y = _image(torch.float64, "cpu", seed=34, shape=(1, 1, 4, 5)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: patch_ncc(a, b, 3), (x, y))


# ------------------------------------------------------------------------------- kornia parity
# Blur and Sobel come from kornia.filters; the hand-written versions they replaced are kept here as the oracle.


def _gaussian_blur_by_hand(image: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(min(2.0 * sigma, max(image.shape[-2:]))))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(device=image.device, dtype=image.dtype)
    batch, channels, height, width = image.shape
    z = image.reshape(batch * channels, 1, height, width)
    z = F.conv2d(F.pad(z, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    z = F.conv2d(F.pad(z, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return z.reshape(batch, channels, height, width)


def _sobel_by_hand(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sobel_x = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
    sobel_y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))
    batch, channels, height, width = image.shape
    kernels = torch.tensor((sobel_x, sobel_y), dtype=image.dtype, device=image.device).unsqueeze(1) / 8.0
    z = F.pad(image.reshape(batch * channels, 1, height, width), (1, 1, 1, 1), mode="replicate")
    gradients = F.conv2d(z, kernels).reshape(batch, channels, 2, height, width)
    return gradients[:, :, 0], gradients[:, :, 1]


# Measured on the CPU: bitwise equal in float32; within 1 ulp in float64 (kornia's taps exp(-n² / 2σ²) and the
# hand-written exp(-(n / σ)² / 2) round differently in their last bit).
BLUR_ATOL = {torch.float32: 1e-7, torch.float64: 1e-15}


@pytest.mark.parametrize("sigma", [1e-70, 0.3, 1.0, 2.5, 100.0])
@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (1, 1, 1, 9), (2, 1, 1, 1), (1, 2, 40, 33)])
def test_kornia_blur_matches_the_hand_written_one(sigma: float, shape, device, dtype) -> None:
    x = _randn(*shape, dtype=dtype, device=device, seed=40)
    blurred, expected = gaussian_blur(x, sigma), _gaussian_blur_by_hand(x, sigma)
    torch.testing.assert_close(blurred, expected, atol=BLUR_ATOL[dtype], rtol=0)
    if device.type == "cpu" and dtype == torch.float32:
        assert torch.equal(blurred, expected)


@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (1, 1, 1, 1), (1, 2, 17, 19)])
def test_kornia_sobel_is_bitwise_the_hand_written_one(shape, device, dtype) -> None:
    x = _randn(*shape, dtype=dtype, device=device, seed=41)
    (gx, gy), (hx, hy) = sobel(x), _sobel_by_hand(x)
    torch.testing.assert_close(gx, hx, atol=0, rtol=0)
    torch.testing.assert_close(gy, hy, atol=0, rtol=0)


def test_gradient_ncc_tiny_sigma_is_no_blur(device: torch.device, dtype: torch.dtype) -> None:
    # kornia's own gaussian_blur2d builds the taps in the image's dtype and refuses a sigma that rounds to 0 there;
    # the float64 taps make sigma = 1e-70 the identity kernel, the limit of a vanishing blur.
    x, y = _image(dtype, device, seed=42), _image(dtype, device, seed=43)
    torch.testing.assert_close(gradient_ncc(x, y, sigma=1e-70), gradient_ncc(x, y, sigma=0.0), atol=0, rtol=0)


# ------------------------------------------------------------------------------------- loss classes

# (class, arguments, the functional similarity with the same settings), on (B, C, 6, 7) images.
LOSS_CLASSES: dict[str, tuple[type[SimilarityLoss], dict[str, Any], Callable[..., torch.Tensor]]] = {
    "mse": (MSELoss, {}, lambda x, y: -mse(x, y)),
    "ncc": (NCCLoss, {"eps": 1e-6}, lambda x, y: ncc(x, y, eps=1e-6)),
    "patch_ncc": (PatchNCCLoss, {"patch_size": 3}, lambda x, y: patch_ncc(x, y, 3)),
    "multiscale_ncc": (
        MultiscaleNCCLoss,
        {"patch_sizes": (None, 3), "weights": (0.3, 0.7)},
        lambda x, y: multiscale_ncc(x, y, (None, 3), (0.3, 0.7)),
    ),
    "gradient_ncc": (
        GradientNCCLoss,
        {"sigma": 0.7, "patch_size": 4},
        lambda x, y: gradient_ncc(x, y, sigma=0.7, patch_size=4),
    ),
}


def _loss(name: str) -> SimilarityLoss:
    cls, kwargs, _ = LOSS_CLASSES[name]
    return cls(**kwargs)


class TestSimilarityLoss:
    def test_forward_is_one_minus_similarity(self, device: torch.device, dtype: torch.dtype) -> None:
        class Mean(SimilarityLoss):
            def similarity(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
                return (pred * target).flatten(1).mean(1)

        x = _image(dtype, device, seed=44)
        torch.testing.assert_close(Mean()(x, x), 1.0 - (x * x).flatten(1).mean(1))
        assert Mean.sparse is False and Mean.patch_size is None

    def test_similarity_must_be_implemented(self) -> None:
        with pytest.raises(NotImplementedError, match="SimilarityLoss must implement similarity"):
            SimilarityLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))

    @pytest.mark.parametrize("name", list(LOSS_CLASSES))
    def test_every_loss_is_a_similarity_loss_matching_its_function(self, name: str, device, dtype) -> None:
        x, y = _image(dtype, device, seed=45, shape=(3, 2, 6, 7)), _image(dtype, device, seed=46, shape=(3, 2, 6, 7))
        loss, similarity = _loss(name), LOSS_CLASSES[name][2]
        assert isinstance(loss, SimilarityLoss)
        torch.testing.assert_close(loss.similarity(x, y), similarity(x, y), atol=0, rtol=0)
        expected = -similarity(x, y) if name == "mse" else 1.0 - similarity(x, y)
        torch.testing.assert_close(loss(x, y), expected, atol=0, rtol=0)
        assert loss(x, y).shape == (3,) and loss(x, y).dtype == dtype

    @pytest.mark.parametrize("name", list(LOSS_CLASSES))
    def test_half_precision_gives_float32(self, name: str) -> None:
        x, y = _image(torch.float16, "cpu", seed=47) / 1000, _image(torch.float16, "cpu", seed=48) / 1000
        value = _loss(name)(x, y)
        assert value.dtype == torch.float32 and bool(torch.isfinite(value).all())

    @pytest.mark.parametrize("name", list(LOSS_CLASSES))
    def test_gradcheck(self, name: str) -> None:
        x = _image(torch.float64, "cpu", seed=49, shape=(2, 1, 6, 7)).requires_grad_()
        y = _image(torch.float64, "cpu", seed=50, shape=(2, 1, 6, 7))
        assert torch.autograd.gradcheck(lambda z: _loss(name)(z, y), (x,), fast_mode=True)

    @pytest.mark.parametrize("name", list(LOSS_CLASSES))
    def test_built_from_a_class_path(self, name: str) -> None:
        # How a recipe names a loss: the registration module's `loss: SimilarityLoss` argument reads it like this.
        cls, kwargs, _ = LOSS_CLASSES[name]
        parser = jsonargparse.ArgumentParser(exit_on_error=False)
        parser.add_argument("--loss", type=SimilarityLoss)
        config = parser.parse_object({"loss": {"class_path": f"drreg.losses.{cls.__name__}", "init_args": kwargs}})
        loss = parser.instantiate(config).loss
        assert type(loss) is cls
        x, y = _image(torch.float64, "cpu", seed=51), _image(torch.float64, "cpu", seed=52)
        torch.testing.assert_close(loss(x, y), _loss(name)(x, y), atol=0, rtol=0)


class TestMSELoss:
    def test_hand_value_and_attributes(self, device: torch.device, dtype: torch.dtype) -> None:
        pred = torch.zeros(1, 1, 2, 2, dtype=dtype, device=device)
        target = torch.full((1, 1, 2, 2), 2.0, dtype=dtype, device=device)
        torch.testing.assert_close(MSELoss()(pred, target), torch.tensor([4.0], dtype=dtype, device=device))
        torch.testing.assert_close(MSELoss().similarity(pred, target), torch.tensor([-4.0], dtype=dtype, device=device))
        assert MSELoss.sparse is True and MSELoss().patch_size is None
        assert repr(MSELoss()) == "MSELoss()"

    def test_sparse_equals_dense(self, device: torch.device, dtype: torch.dtype) -> None:
        x, y = _image(dtype, device, seed=53), _image(dtype, device, seed=54)
        indices = torch.arange(42, device=device)
        torch.testing.assert_close(MSELoss()(gather_pixels(x, indices), gather_pixels(y, indices)), MSELoss()(x, y))


class TestNCCLoss:
    def test_hand_value_and_attributes(self, device: torch.device, dtype: torch.dtype) -> None:
        pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=dtype, device=device)
        target = torch.tensor([[[[1.0, 3.0], [2.0, 4.0]]]], dtype=dtype, device=device)
        torch.testing.assert_close(NCCLoss()(pred, target), torch.tensor([0.2], dtype=dtype, device=device))
        assert NCCLoss.sparse is True and NCCLoss().patch_size is None
        assert NCCLoss(eps=0.0).eps == 0.0 and repr(NCCLoss()) == "NCCLoss(eps=1e-08)"

    def test_sparse_equals_dense(self, device: torch.device, dtype: torch.dtype) -> None:
        x, y = _image(dtype, device, seed=55), _image(dtype, device, seed=56)
        indices = torch.randperm(42, generator=torch.Generator().manual_seed(1)).to(device)
        torch.testing.assert_close(
            NCCLoss()(gather_pixels(x, indices), gather_pixels(y, indices)), NCCLoss()(x, y), atol=1e-6, rtol=0
        )

    @pytest.mark.parametrize(("eps", "error"), [(-1.0, ValueError), (float("nan"), ValueError), ("0", ValueError)])
    def test_bad_eps(self, eps: Any, error: type[Exception]) -> None:
        with pytest.raises(error, match="eps"):
            NCCLoss(eps=eps)


class TestPatchNCCLoss:
    def test_attributes(self) -> None:
        loss = PatchNCCLoss(patch_size=5)
        assert loss.sparse is True and loss.patch_size == 5
        assert repr(loss) == "PatchNCCLoss(patch_size=5, eps=1e-08)"

    def test_sparse_patches_from_sample_patch_indices(self, device: torch.device, dtype: torch.dtype) -> None:
        # A sparse draw laid out as the loss's patch_size says: whole p x p patches.
        x, y = _image(dtype, device, seed=57), _image(dtype, device, seed=58)
        loss = PatchNCCLoss(patch_size=3)
        indices = sample_patch_indices(6, 7, loss.patch_size, 4, generator=torch.Generator().manual_seed(2))
        indices = indices.to(device)
        expected = sparse_patch_ncc(gather_pixels(x, indices), gather_pixels(y, indices), 3, 1e-8)
        torch.testing.assert_close(loss(gather_pixels(x, indices), gather_pixels(y, indices)), 1.0 - expected)

    @pytest.mark.parametrize("patch_size", [0, -2, 2.5, 3.0, True, None, "3"])
    def test_bad_patch_size(self, patch_size: Any) -> None:
        with pytest.raises(ValueError, match="patch_size must be a positive integer"):
            PatchNCCLoss(patch_size=patch_size)

    def test_patch_larger_than_the_image(self) -> None:
        with pytest.raises(ValueError, match=r"patch_size 9 is larger than the image \(6 x 7\)"):
            PatchNCCLoss(9)(torch.zeros(1, 1, 6, 7), torch.zeros(1, 1, 6, 7))


class TestMultiscaleNCCLoss:
    def test_defaults_and_attributes(self, device: torch.device, dtype: torch.dtype) -> None:
        loss = MultiscaleNCCLoss()
        assert loss.patch_sizes == (None, 9) and loss.weights is None and loss.sparse is False
        assert loss.patch_size is None
        x, y = (
            _image(dtype, device, seed=59, shape=(2, 1, 10, 11)),
            _image(dtype, device, seed=60, shape=(2, 1, 10, 11)),
        )
        torch.testing.assert_close(loss(x, y), 1.0 - multiscale_ncc(x, y, (None, 9)))
        assert repr(MultiscaleNCCLoss((0, 3), (1, 3))) == (
            "MultiscaleNCCLoss(patch_sizes=(0, 3), weights=(1.0, 3.0), eps=1e-08)"
        )

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"patch_sizes": ()}, "non-empty sequence"),
            ({"patch_sizes": (None, 3), "weights": (1.0,)}, "one entry per patch size"),
            ({"patch_sizes": (None, 3), "weights": (-1.0, 1.0)}, "each weight must be"),
            ({"patch_sizes": (None, 2.5)}, "each patch size must be"),
            ({"eps": -1.0}, "eps must be"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            MultiscaleNCCLoss(**kwargs)

    def test_dense_only(self) -> None:
        with pytest.raises(ValueError, match=r"dense images \(B, C, H, W\)"):
            MultiscaleNCCLoss((None,))(torch.zeros(1, 1, 9), torch.zeros(1, 1, 9))


class TestGradientNCCLoss:
    def test_defaults_and_attributes(self, device: torch.device, dtype: torch.dtype) -> None:
        loss = GradientNCCLoss()
        assert (loss.sigma, loss.patch_size, loss.eps, loss.sparse) == (1.0, None, 1e-8, False)
        x, y = _image(dtype, device, seed=61), _image(dtype, device, seed=62)
        torch.testing.assert_close(loss(x, y), 1.0 - gradient_ncc(x, y))
        assert repr(GradientNCCLoss(0.5, 3)) == "GradientNCCLoss(sigma=0.5, patch_size=3, eps=1e-08)"

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"sigma": -1.0}, "sigma must be"),
            ({"patch_size": -1}, "patch_size must be"),
            ({"patch_size": False}, "patch_size"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            GradientNCCLoss(**kwargs)

    def test_dense_only(self) -> None:
        with pytest.raises(ValueError, match=r"dense images \(B, C, H, W\)"):
            GradientNCCLoss()(torch.zeros(1, 1, 9), torch.zeros(1, 1, 9))


# ------------------------------------------------------------------------------------ by name


class TestLossFromName:
    @pytest.mark.parametrize("name", LOSSES)
    def test_each_name_builds_its_class(self, name: str, device: torch.device, dtype: torch.dtype) -> None:
        cls, kwargs, _ = LOSS_CLASSES[name]
        loss = loss_from_name(name, **kwargs)
        assert type(loss) is cls
        x, y = _image(dtype, device, seed=63), _image(dtype, device, seed=64)
        torch.testing.assert_close(loss(x, y), cls(**kwargs)(x, y), atol=0, rtol=0)

    def test_defaults(self) -> None:
        assert repr(loss_from_name("ncc")) == repr(NCCLoss())
        assert repr(loss_from_name("gradient_ncc")) == repr(GradientNCCLoss())

    def test_unknown_name(self) -> None:
        with pytest.raises(ValueError, match="unknown loss name 'ssim'; expected one of: 'mse', 'ncc', 'patch_ncc'"):
            loss_from_name("ssim")

    @pytest.mark.parametrize(
        ("name", "kwargs", "match"),
        [
            ("ncc", {"patch_size": 3}, r"loss 'ncc' \(NCCLoss\) takes eps; got unexpected patch_size"),
            ("mse", {"eps": 1e-8}, r"loss 'mse' \(MSELoss\) takes no arguments; got unexpected eps"),
            ("patch_ncc", {"patch_size": 3, "sigma": 1.0}, "takes patch_size, eps; got unexpected sigma"),
        ],
    )
    def test_arguments_of_another_loss_are_refused(self, name: str, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(TypeError, match=match):
            loss_from_name(name, **kwargs)

    def test_patch_ncc_needs_its_patch_size(self) -> None:
        with pytest.raises(TypeError, match="patch_size"):
            loss_from_name("patch_ncc")


class TestImageLossCompatibility:
    @pytest.mark.parametrize("name", LOSSES)
    def test_deprecated_alias_warns_and_builds_the_class(self, name: str) -> None:
        cls, kwargs, _ = LOSS_CLASSES[name]
        with pytest.warns(DeprecationWarning, match=f"use drreg.losses.{cls.__name__}"):
            loss = ImageLoss(name, **kwargs)
        assert isinstance(loss, SimilarityLoss) and type(loss.loss) is cls
        assert (loss.sparse, loss.patch_size) == (loss.loss.sparse, loss.loss.patch_size)
        x, y = _image(torch.float64, "cpu", seed=65), _image(torch.float64, "cpu", seed=66)
        torch.testing.assert_close(loss(x, y), loss.loss(x, y), atol=0, rtol=0)
        torch.testing.assert_close(loss.similarity(x, y), loss.loss.similarity(x, y), atol=0, rtol=0)


@pytest.mark.parametrize("loss", [mse, ncc, lambda x, y: patch_ncc(x, y, 3), gradient_ncc])
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_images_are_compared_in_float32_issue10(
    loss: Callable[..., torch.Tensor], half: torch.dtype
) -> None:
    # float16 squares overflow above 256: the MSE of ordinary intensities was inf and their NCC NaN (found by fuzzing).
    x = torch.arange(64.0).reshape(1, 1, 8, 8) * 20.0
    y = x.flip(-1)
    value = loss(x.to(half), y.to(half))
    assert value.dtype == torch.float32 and torch.isfinite(value).all()
    torch.testing.assert_close(value, loss(x.to(half).float(), y.to(half).float()))


@pytest.mark.parametrize("loss", [ncc, lambda x, y, eps: patch_ncc(x, y, 2, eps=eps), gradient_ncc])
def test_eps_zero_and_a_constant_image_issue10(loss: Callable[..., torch.Tensor]) -> None:
    # eps = 0 is allowed, but a constant image then gave 0 / 0 = NaN instead of similarity 0.
    constant = torch.full((1, 1, 4, 4), 1.5)
    torch.testing.assert_close(loss(constant, constant, eps=0.0), torch.zeros(1))


def test_eps_may_be_any_real_number_issue10() -> None:
    # check_number accepts a Fraction (a numbers.Real), but the loss used the raw value and failed in torch.
    from fractions import Fraction

    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    torch.testing.assert_close(ncc(x, x.flip(-1), eps=Fraction(1, 10**8)), ncc(x, x.flip(-1)))


@pytest.mark.parametrize("sigma", [1e12, 1e308, 1.36e-70, 5e-324])
def test_gradient_ncc_extreme_sigma_issue10(sigma: float) -> None:
    # A huge sigma asked for a 2e12-tap kernel (or an infinite one); one below float32's range divided 0 by 0.
    x = torch.arange(64.0).reshape(1, 1, 8, 8) ** 2
    assert torch.isfinite(gradient_ncc(x, x.flip(-1), sigma=sigma)).all()


@pytest.mark.parametrize("patch_size", [False, "", 2.0])
def test_gradient_ncc_patch_size_is_an_integer_issue10(patch_size: object) -> None:
    # False and "" were read as 0 (the global NCC) by their truthiness; 0 and None stay the global NCC.
    x = torch.arange(64.0).reshape(1, 1, 8, 8) ** 2
    with pytest.raises(ValueError, match="patch_size must be a non-negative integer or None"):
        gradient_ncc(x, x, patch_size=patch_size)  # type: ignore[arg-type]
    torch.testing.assert_close(gradient_ncc(x, x.flip(-1), patch_size=0), gradient_ncc(x, x.flip(-1)))
