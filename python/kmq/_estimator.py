"""kmq.KMeans: scikit-learn's KMeans interface over kmq's exact engine."""
import inspect
import numbers
import warnings

import numpy as np

from . import _core

try:  # scikit-learn's own exception when it is there, so its checks recognise it
    from sklearn.exceptions import NotFittedError
except ImportError:  # pragma: no cover - depends on the environment
    class NotFittedError(ValueError, AttributeError):
        """The estimator was used before fit."""

_SEED_MAX = 2 ** 63 - 1  # kmq's seeds go up to there (job files, JSON)


def _seed(random_state):
    if random_state is None:
        return int(np.random.randint(0, _SEED_MAX, dtype=np.int64))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        s = int(random_state)
        if not 0 <= s <= _SEED_MAX:
            raise ValueError(f"random_state = {s} is outside 0..2**63-1")
        return s
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, _SEED_MAX, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, _SEED_MAX, dtype=np.int64))
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator, "
                     f"not {random_state!r}")


def _int_param(name, value, lo, hi):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} = {value!r} must be an integer in {lo}..{hi}")
    return int(value)


class KMeans:
    """Exact k-means of colours (3 channels), with scikit-learn's interface.

    Parameters follow sklearn.cluster.KMeans:

    n_clusters : int, 1..256 (default 8)
    n_init : int >= 1 or "auto" (default 10): runs, the lowest inertia kept;
        "auto" is 1 for k-means++ and 10 for random, as scikit-learn's.
    max_iter : int >= 1 (default 300): Lloyd iterations per run.
    tol : float >= 0 (default 1e-4): scikit-learn's rule exactly: a run stops
        after the iteration whose centre shift (the sum over centres of the
        squared distance each moved) is <= tol times the mean over the three
        channels of the data's (weighted) variance. Relative, so the same for
        uint8 and [0, 1] input.
    init : "k-means++" (default; greedy, 2 + floor(ln k) local trials as
        scikit-learn) or "random" (k distinct colours drawn by weight).
    random_state : None, int, RandomState or Generator: the seed of kmq's
        random streams (an int s gives the fit of ``kmq quantize --seed s``).
    n_threads : None (all cores) or int >= 1. Results never depend on it.

    Data: arrays of shape (n, 3) or (height, width, 3). Integer arrays are
    8-bit colours 0..255; float arrays lie in [0, 1] and are rounded to the
    nearest of 256 levels (exact for data from 8-bit images). Results
    (cluster_centers_, inertia_, transform) are in the scale of the input.
    sample_weight must be whole numbers (pixel counts); 0 leaves a row out.

    Attributes after fit: cluster_centers_ (k_, 3) with k_ = min(n_clusters,
    distinct colours of weight > 0), labels_ (int32), inertia_, n_iter_,
    converged_, n_features_in_ (3).
    """

    def __init__(self, n_clusters=8, *, n_init=10, max_iter=300, tol=1e-4, init="k-means++",
                 random_state=None, n_threads=None):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.n_threads = n_threads

    # -- scikit-learn's parameter protocol (as BaseEstimator does it) --------

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (v is defaults.get(k) or (type(v) is type(defaults.get(k))
                                                    and v == defaults.get(k)))]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _more_tags(self):
        return {"X_types": ["2darray"], "requires_y": False}

    # -- fitting --------------------------------------------------------------

    def _params(self, seed):
        k = _int_param("n_clusters", self.n_clusters, 1, 256)
        if self.init not in _core.SEEDS:
            raise ValueError(f"init = {self.init!r} must be 'k-means++' or 'random' "
                             "(kmq fits from its own seeding, not from given centres)")
        if self.n_init == "auto":
            runs = 1 if _core.SEEDS[self.init] == 0 else 10
        else:
            runs = _int_param("n_init", self.n_init, 1, 10000)
        max_iter = _int_param("max_iter", self.max_iter, 1, 1000000)
        if not isinstance(self.tol, numbers.Real) or not (self.tol >= 0) or \
                not np.isfinite(self.tol):
            raise ValueError(f"tol = {self.tol!r} must be a finite number >= 0")
        threads = 0 if self.n_threads is None else _int_param("n_threads", self.n_threads,
                                                               1, 4096)
        return _core.params(k, runs, max_iter, self.tol, self.init, seed, threads), threads

    def fit(self, X, y=None, sample_weight=None):
        """Fits k-means to the colours of X; returns self."""
        rgb, scale = _core.colours(X)
        weights = _core.whole_weights(sample_weight, rgb.shape[0])
        if rgb.shape[0] < _int_param("n_clusters", self.n_clusters, 1, 256):
            raise ValueError(f"n_samples = {rgb.shape[0]} should be >= "
                             f"n_clusters = {self.n_clusters}")
        p, threads = self._params(_seed(self.random_state))
        r = _core.fit(rgb, weights, p)
        if r["centers"].shape[0] < p.k:
            warnings.warn(f"the data has {r['centers'].shape[0]} distinct colours (of weight "
                          f"> 0), fewer than n_clusters = {p.k}: that many clusters were found",
                          UserWarning, stacklevel=2)
        self._centers255 = r["centers"]
        self._scale = scale
        self._threads = threads
        self.cluster_centers_ = r["centers"] / scale
        self.labels_ = r["labels"]
        self.inertia_ = r["inertia"] / (scale * scale)
        self.n_iter_ = r["iterations"]
        self.converged_ = r["converged"]
        self.n_features_in_ = 3
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """fit(X), then the label of each row of X."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def _fitted(self):
        if not hasattr(self, "_centers255"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def _shape_of(self, X):
        a = np.asarray(X)
        return a.shape[:-1]

    def predict(self, X, sample_weight=None):
        """The nearest centre of each colour of X (lowest index on ties),
        shaped as X without its channel axis."""
        self._fitted()
        rgb, _ = _core.colours(X)
        labels, _ = _core.assign(rgb, self._centers255, self._threads)
        return labels.reshape(self._shape_of(X))

    def score(self, X, y=None, sample_weight=None):
        """Minus the inertia of X under the centres (as scikit-learn)."""
        self._fitted()
        rgb, scale = _core.colours(X)
        weights = _core.whole_weights(sample_weight, rgb.shape[0])
        labels, inertia = _core.assign(rgb, self._centers255, self._threads)
        if weights is not None:
            d = rgb.astype(np.float64) - self._centers255[labels]
            inertia = float(np.dot(np.einsum("ij,ij->i", d, d), weights.astype(np.float64)))
        return -inertia / (scale * scale)

    def transform(self, X):
        """Distance of each colour of X to every centre, in X's scale: (n, k_)."""
        self._fitted()
        rgb, scale = _core.colours(X)
        d = rgb.astype(np.float64)[:, None, :] - self._centers255[None, :, :]
        return np.sqrt(np.einsum("ijc,ijc->ij", d, d)) / scale

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)
