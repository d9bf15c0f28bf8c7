"""kmq from Python: exact k-means colour quantization over libkmq.

    import kmq
    km = kmq.KMeans(n_clusters=16, random_state=0).fit(pixels)   # (n, 3) or (h, w, 3)
    km.cluster_centers_, km.labels_, km.inertia_, km.n_iter_
    palette, index = kmq.quantize(image, 16)                     # as `kmq quantize`
    rows = kmq.read_run("out/demo")                              # a DataFrame with pandas

libkmq.so.0 is found through KMQ_LIBRARY (a file, or a build folder), the
dynamic linker's search, /usr/local and /usr, or ../build of a source tree.
"""
from ._estimator import KMeans, NotFittedError
from ._quantize import quantize
from ._run import read_run

__version__ = "0.1.0"
__all__ = ["KMeans", "NotFittedError", "quantize", "read_run", "library_version"]


def library_version():
    """The version of the libkmq loaded ("0.1.0")."""
    from ._core import lib
    return lib().kmq_version().decode()
