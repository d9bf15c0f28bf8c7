"""Colour arrays in, numpy arrays out: the calls into libkmq.

kmq's engine works on 8-bit colours (0..255 per channel). Integer arrays are
taken as such. Float arrays are taken in [0, 1], the scale of
`image / 255` and of scikit-image's `img_as_float`, and are rounded to the
nearest of the 256 levels (so data that came from an 8-bit image is fitted
exactly); results are then given back in [0, 1] too. Anything else (values
outside the range, NaN, a fourth channel) is a ValueError that says so.
"""
import ctypes
import threading

import numpy as np

from . import _lib

_LIB = None
_LIB_LOCK = threading.Lock()

SEEDS = {"k-means++": 0, "kmeans++": 0, "random": 1}


def lib():
    global _LIB
    with _LIB_LOCK:
        if _LIB is None:
            _LIB = _lib.load()
    return _LIB


def colours(x, what="X"):
    """(rgb, scale): x as a C-contiguous (n, 3) uint8 array, and 1.0 for
    integer input or 255.0 for float input (what a result is divided by)."""
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "uif":
        raise ValueError(f"{what} must be an array of numbers (uint8 0..255 or float 0..1), "
                         f"not of dtype {a.dtype}")
    if not (a.ndim in (2, 3) and a.shape[-1] == 3):
        raise ValueError(f"{what} must have shape (n, 3) or (height, width, 3): 3 colour "
                         f"channels (r, g, b), got shape {a.shape}")
    a = a.reshape(-1, 3)
    if a.shape[0] == 0:
        raise ValueError(f"{what} holds no colours (0 rows)")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} holds NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"float {what} must lie in [0, 1] (found {lo:g} .. {hi:g}); "
                             "for 8-bit values 0..255 pass an integer (uint8) array")
        return np.ascontiguousarray(np.rint(a * 255.0), dtype=np.uint8), 255.0
    if a.dtype != np.uint8:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"integer {what} must lie in 0..255 (found {lo} .. {hi})")
    return np.ascontiguousarray(a, dtype=np.uint8), 1.0


def whole_weights(sample_weight, n):
    """sample_weight as n uint64 pixel counts, or None for all 1."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "uifb":
        raise ValueError(f"sample_weight must be numbers, not of dtype {w.dtype}")
    w = w.astype(np.float64).reshape(-1)
    if w.shape[0] != n:
        raise ValueError(f"sample_weight has {w.shape[0]} entries for {n} samples")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and >= 0")
    if np.any(w != np.floor(w)) or np.any(w >= 2.0 ** 53):
        # The engine is exact because weights are pixel counts (integers).
        raise ValueError("sample_weight must be whole numbers (counts of each colour): "
                         "kmq's exact engine sums integer weights")
    if not np.any(w > 0):
        raise ValueError("sample_weight is 0 everywhere: no colour to fit")
    return np.ascontiguousarray(w, dtype=np.uint64)


def _u8(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))


def _check(code, msg):
    if code == 0:
        return
    text = msg.value.decode("utf-8", "replace")
    if code == 1:
        raise MemoryError(f"kmq: {text}")
    raise ValueError(f"kmq: {text}")


def params(k, restarts, max_iter, tol, init, seed, threads):
    p = _lib._Params()
    lib().kmq_params_init(ctypes.byref(p), int(k))
    p.restarts = int(restarts)
    p.max_iter = int(max_iter)
    p.tol = float(tol)
    p.init = SEEDS[init]
    p.seed = int(seed)
    p.threads = int(threads)
    return p


def fit(rgb, weights, p):
    """Weighted k-means of rgb (n, 3) uint8: dict of numpy results, colours 0..255."""
    res = _lib._Result()
    msg = ctypes.create_string_buffer(512)
    wptr = None if weights is None else weights.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64))
    code = lib().kmq_kmeans_rgb(_u8(rgb), wptr, rgb.shape[0], ctypes.byref(p), ctypes.byref(res),
                                msg, len(msg))
    _check(code, msg)
    try:
        k = res.k
        return {
            "centers": np.ctypeslib.as_array(res.centers, shape=(k, 3)).copy(),
            "sizes": np.ctypeslib.as_array(res.sizes, shape=(k,)).copy(),
            "labels": np.ctypeslib.as_array(res.labels, shape=(rgb.shape[0],)).astype(np.int32),
            "inertia": res.inertia,
            "iterations": res.iterations,
            "converged": bool(res.converged),
        }
    finally:
        lib().kmq_result_free(ctypes.byref(res))


def assign(rgb, centers, threads):
    """(labels int32, inertia) of rgb (n, 3) uint8 under centers (k, 3) in 0..255."""
    c = np.ascontiguousarray(centers, dtype=np.float64)
    labels = np.empty(rgb.shape[0], dtype=np.uint8)
    inertia = ctypes.c_double()
    msg = ctypes.create_string_buffer(512)
    code = lib().kmq_assign_rgb(_u8(rgb), rgb.shape[0],
                                c.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), c.shape[0],
                                int(threads), _u8(labels), ctypes.byref(inertia), msg, len(msg))
    _check(code, msg)
    return labels.astype(np.int32), inertia.value


def quantize_rgb(rgb, height, width, p):
    """(palette (m, 3) uint8, index (height, width) uint8, inertia) as `kmq quantize`."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    index = np.empty((height, width), dtype=np.uint8)
    ncolors = ctypes.c_int()
    inertia = ctypes.c_double()
    msg = ctypes.create_string_buffer(512)
    code = lib().kmq_quantize_rgb(_u8(rgb), width, height, ctypes.byref(p), _u8(palette),
                                  ctypes.byref(ncolors), _u8(index), ctypes.byref(inertia), msg,
                                  len(msg))
    _check(code, msg)
    return palette[: ncolors.value].copy(), index, inertia.value
