"""Finding and loading libkmq.so.0, and the ctypes prototypes of kmq.h."""
import ctypes
import ctypes.util
import os
import pathlib

ABI = 0
SONAME = f"libkmq.so.{ABI}"


class _Params(ctypes.Structure):
    _fields_ = [
        ("k", ctypes.c_int),
        ("restarts", ctypes.c_int),
        ("max_iter", ctypes.c_int),
        ("tol", ctypes.c_double),
        ("init", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("threads", ctypes.c_int),
    ]


class _Result(ctypes.Structure):
    _fields_ = [
        ("k", ctypes.c_int),
        ("centers", ctypes.POINTER(ctypes.c_double)),
        ("sizes", ctypes.POINTER(ctypes.c_uint64)),
        ("labels", ctypes.POINTER(ctypes.c_uint8)),
        ("inertia", ctypes.c_double),
        ("iterations", ctypes.c_int),
        ("converged", ctypes.c_int),
    ]


def _candidates():
    """Where libkmq may be, in the order tried."""
    env = os.environ.get("KMQ_LIBRARY")
    if env:
        # Explicit: used alone. A folder (a build tree) holds libkmq.so.0.
        yield os.path.join(env, SONAME) if os.path.isdir(env) else env
        return
    # The dynamic linker's own search (LD_LIBRARY_PATH, ld.so.cache: the
    # Debian package and `cmake --install` followed by ldconfig).
    yield SONAME
    found = ctypes.util.find_library("kmq")
    if found:
        yield found
    # `cmake --install` into the usual prefixes without ldconfig.
    for prefix in ("/usr/local", "/usr"):
        for libdir in ("lib", "lib/x86_64-linux-gnu", "lib64"):
            yield os.path.join(prefix, libdir, SONAME)
    # Development: the package imported from python/ of a source tree.
    root = pathlib.Path(__file__).resolve().parents[2]
    yield str(root / "build" / SONAME)


def load():
    """The loaded library, with its function prototypes set."""
    tried = []
    lib = None
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as exc:
            tried.append(f"{path} ({exc})")
    if lib is None:
        hint = ("set KMQ_LIBRARY to the path of libkmq.so.0" if "KMQ_LIBRARY" not in os.environ
                else "KMQ_LIBRARY names a file that cannot be loaded")
        raise ImportError(f"kmq: cannot load libkmq ({hint}); tried: " + "; ".join(tried))

    u8p = ctypes.POINTER(ctypes.c_uint8)
    lib.kmq_version.restype = ctypes.c_char_p
    lib.kmq_version.argtypes = []
    lib.kmq_params_init.restype = None
    lib.kmq_params_init.argtypes = [ctypes.POINTER(_Params), ctypes.c_int]
    lib.kmq_kmeans_rgb.restype = ctypes.c_int
    lib.kmq_kmeans_rgb.argtypes = [u8p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t,
                                   ctypes.POINTER(_Params), ctypes.POINTER(_Result),
                                   ctypes.c_char_p, ctypes.c_size_t]
    lib.kmq_result_free.restype = None
    lib.kmq_result_free.argtypes = [ctypes.POINTER(_Result)]
    lib.kmq_assign_rgb.restype = ctypes.c_int
    lib.kmq_assign_rgb.argtypes = [u8p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_double),
                                   ctypes.c_int, ctypes.c_int, u8p,
                                   ctypes.POINTER(ctypes.c_double), ctypes.c_char_p,
                                   ctypes.c_size_t]
    lib.kmq_quantize_rgb.restype = ctypes.c_int
    lib.kmq_quantize_rgb.argtypes = [u8p, ctypes.c_size_t, ctypes.c_size_t,
                                     ctypes.POINTER(_Params), u8p, ctypes.POINTER(ctypes.c_int),
                                     u8p, ctypes.POINTER(ctypes.c_double), ctypes.c_char_p,
                                     ctypes.c_size_t]
    return lib
