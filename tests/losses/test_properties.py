"""What every similarity of drreg.losses shares (the package contract): +-1 on identical / negated images,
invariance to affine intensity changes, bounds, independent batch elements, constant images, sparse == dense,
gradients, half precision and eps = 0."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from drreg.losses import gather_pixels, gradient_ncc, mse, ncc, patch_ncc
from tests._tolerances import ATOL, RTOL
from tests.losses._helpers import FUNCTIONS, SIMILARITIES, SIMILARITY_ATOL, seeded_randn, smooth_image


@pytest.mark.parametrize("name", list(SIMILARITIES))
def test_identical_is_one_and_negated_is_minus_one(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x = smooth_image(dtype, device)
    ones = torch.ones(2, dtype=dtype, device=device)
    atol = SIMILARITY_ATOL[dtype]
    torch.testing.assert_close(SIMILARITIES[name](x, x), ones, atol=atol, rtol=0)
    torch.testing.assert_close(SIMILARITIES[name](x, -x), -ones, atol=atol, rtol=0)


@pytest.mark.parametrize("name", list(SIMILARITIES))
@pytest.mark.parametrize(("scale", "offset"), [(0.5, -2.0), (3.0, 5.0), (20.0, 1000.0)])
def test_invariant_to_affine_intensity(name: str, scale: float, offset: float, device, dtype) -> None:
    x, y = smooth_image(dtype, device, seed=9), smooth_image(dtype, device, seed=10)
    similarity = SIMILARITIES[name]
    reference = similarity(x, y)
    atol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(similarity(scale * x + offset, y), reference, atol=atol, rtol=0)
    torch.testing.assert_close(similarity(x, scale * y + offset), reference, atol=atol, rtol=0)


@pytest.mark.parametrize("name", list(SIMILARITIES))
def test_similarity_bounded(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x, y = smooth_image(dtype, device, seed=11), smooth_image(dtype, device, seed=12)
    values = SIMILARITIES[name](x, y)
    assert values.shape == (2,)
    assert bool((values.abs() <= 1.0 + 1e-6).all())


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_batch_elements_are_independent(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x, y = (
        smooth_image(dtype, device, seed=13, shape=(3, 2, 6, 7)),
        smooth_image(dtype, device, seed=14, shape=(3, 2, 6, 7)),
    )
    batched = FUNCTIONS[name](x, y)
    separate = torch.cat([FUNCTIONS[name](x[i : i + 1], y[i : i + 1]) for i in range(3)])
    assert batched.shape == (3,)
    torch.testing.assert_close(batched, separate, atol=ATOL[dtype], rtol=RTOL[dtype])


@pytest.mark.parametrize("name", list(SIMILARITIES))
def test_constant_images_give_zero_not_nan(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x = torch.full((2, 1, 6, 7), 3.7, dtype=dtype, device=device, requires_grad=True)
    y = smooth_image(dtype, device, seed=15)
    value = SIMILARITIES[name](x, y)
    value.sum().backward()
    torch.testing.assert_close(value.detach(), torch.zeros(2, dtype=dtype, device=device), atol=1e-5, rtol=0)
    assert bool(torch.isfinite(x.grad).all())
    assert bool(torch.isfinite(SIMILARITIES[name](x.detach(), x.detach())).all())


@pytest.mark.parametrize("name", ["mse", "ncc"])
def test_sparse_all_pixels_equals_dense(name: str, device: torch.device, dtype: torch.dtype) -> None:
    x, y = (
        smooth_image(dtype, device, seed=16, shape=(2, 2, 6, 7)),
        smooth_image(dtype, device, seed=17, shape=(2, 2, 6, 7)),
    )
    indices = torch.randperm(42, generator=torch.Generator().manual_seed(0)).to(device)  # any order
    function = FUNCTIONS[name]
    sparse = function(gather_pixels(x, indices), gather_pixels(y, indices))
    torch.testing.assert_close(sparse, function(x, y), atol=SIMILARITY_ATOL[dtype], rtol=RTOL[dtype])


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradcheck_dense(name: str) -> None:
    x = smooth_image(torch.float64, "cpu", seed=20, shape=(2, 2, 6, 7)).requires_grad_()
    y = smooth_image(torch.float64, "cpu", seed=21, shape=(2, 2, 6, 7)).requires_grad_()
    # fast_mode checks random projections of the Jacobian: the full one costs 2 x 168 evaluations per input.
    assert torch.autograd.gradcheck(FUNCTIONS[name], (x, y), fast_mode=True)


@pytest.mark.parametrize("name", ["mse", "ncc", "patch_ncc"])
def test_gradcheck_sparse(name: str) -> None:
    x = seeded_randn(2, 2, 3 * 4, seed=22).requires_grad_()
    y = seeded_randn(2, 2, 3 * 4, seed=23).requires_grad_()
    function = {"mse": mse, "ncc": ncc, "patch_ncc": lambda a, b: patch_ncc(a, b, 2)}[name]
    assert torch.autograd.gradcheck(function, (x, y))


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
