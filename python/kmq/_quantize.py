"""kmq.quantize: one image, as `kmq quantize` fits and maps it."""
import collections

import numpy as np

from . import _core

Quantized = collections.namedtuple("Quantized", ["palette", "index"])


def quantize(image, k, *, restarts=10, max_iter=300, tol=1e-4, init="k-means++", seed=0,
             threads=None):
    """Colour quantization of image (height, width, 3) to k colours.

    Returns (palette, index): palette (m, 3) uint8, the fitted centres
    rounded to 8 bits with m = min(k, distinct colours); index (height,
    width) uint8, each pixel's palette entry. The same fit, palette and
    indices as `kmq quantize IMAGE -k K --seed SEED` (with its defaults:
    restarts 10, max_iter 300, tol 1e-4, seed 0) writes into kK.png.
    The image is uint8 0..255 or float in [0, 1] (rounded to 8 bits).
    """
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"image must have shape (height, width, 3), got {a.shape}; "
                         "flatten an alpha channel (or drop it) first")
    h, w = a.shape[:2]
    rgb, _ = _core.colours(a, "image")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= 256:
        raise ValueError(f"k = {k!r} must be an integer in 1..256")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed <= 2 ** 63 - 1:
        raise ValueError(f"seed = {seed!r} must be an integer in 0..2**63-1")
    if init not in _core.SEEDS:
        raise ValueError(f"init = {init!r} must be 'k-means++' or 'random'")
    if threads is not None and (not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ValueError(f"threads = {threads!r} must be None (all cores) or an integer >= 1")
    # restarts, max_iter and tol: libkmq checks them and names the bad one.
    p = _core.params(k, restarts, max_iter, tol, init, seed, 0 if threads is None else threads)
    palette, index, _ = _core.quantize_rgb(rgb, h, w, p)
    return Quantized(palette, index)
