"""Unchecked element reads for the numba kernels' inner loops.

``array[i]`` in numba code wraps negative indices around (``i + len`` when ``i < 0``), which costs a few
instructions per read even with bounds checking off; the forward kernels read 8 corners (trilinear) or one voxel
(Siddon) per sample, so these checks were about a fifth of their instructions. :func:`load` reads ``array[i]``
as a plain pointer offset instead. The callers only read indices they have already proven to lie in the array:
the voxel a Siddon walk is in, the corners of a trilinear sample whose cell lies in the grid, a sample index
in ``range(len(alphas))``.

:func:`lerp_pair` reads two neighbouring float32 voxels as one 8-byte vector, widens both at once and weights them
(the trilinear kernels' interpolation along the contiguous axis): the same products and sum as the scalar code,
bit for bit, in about half the instructions.

Caution (as for ``_numba_traversal.py``): numba's on-disk cache keys a kernel on its own file, and these
intrinsics are compiled into the kernels of ``_numba_siddon.py`` and ``_numba_trilinear.py``. After editing this
module, delete ``drreg/render/kernels/__pycache__/_numba_*`` (or touch those two files).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["load", "lerp_pair"]


def _typed_load(typingctx, array, index):
    """``array[index]`` of a C-contiguous 1-D array, without wraparound or bounds check.

    ``index`` must lie in ``[0, len(array))``: anything else reads outside the array.
    """
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
        return None
    if not isinstance(index, types.Integer):
        return None
    signature = array.dtype(array, index)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        return builder.load(builder.gep(data, [offset], inbounds=True))

    return signature, codegen


# The kernels call it as load(array, index); the intrinsic's Python signature (with typingctx) is numba's.
load: Callable[..., Any] = intrinsic(_typed_load)


def _typed_lerp_pair(typingctx, array, index, w0, w1):
    """``array[index] * w0 + array[index + 1] * w1`` in float64, the float32 pair read and widened as one vector.

    ``index`` and ``index + 1`` must lie in the array. The products and their sum are those of the scalar
    expression (IEEE operations, no fused multiply-add), so the result is bitwise the same.
    """
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
        return None
    if array.dtype != types.float32 or not isinstance(index, types.Integer):
        return None
    signature = types.float64(array, index, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        w0, w1 = (context.cast(builder, a, t, types.float64) for a, t in zip(args[2:], sig.args[2:]))
        i32 = ir.IntType(32)
        pair_type = ir.VectorType(ir.FloatType(), 2)
        pointer = builder.bitcast(builder.gep(data, [offset], inbounds=True), pair_type.as_pointer())
        pair = builder.fpext(builder.load(pointer, align=4), ir.VectorType(ir.DoubleType(), 2))
        weights = ir.Constant(ir.VectorType(ir.DoubleType(), 2), ir.Undefined)
        weights = builder.insert_element(weights, w0, ir.Constant(i32, 0))
        weights = builder.insert_element(weights, w1, ir.Constant(i32, 1))
        products = builder.fmul(pair, weights)
        first = builder.extract_element(products, ir.Constant(i32, 0))
        return builder.fadd(first, builder.extract_element(products, ir.Constant(i32, 1)))

    return signature, codegen


lerp_pair: Callable[..., Any] = intrinsic(_typed_lerp_pair)
