"""The Python package (python/kmq) against the build tree's libkmq.

Run by CTest (tests/CMakeLists.txt) with pytest:
KMQ_LIBRARY = the built libkmq.so, KMQ_BIN = the built kmq, KMQ_PHOTOS,
KMQ_TEST_TMP. References: `kmq quantize` on the same pixels and seed (the
same fit must come out of both doors), a brute-force numpy nearest-centre
and weighted mean, scikit-learn's clone and parameter checks, and
scikit-learn's KMeans on the same data.
"""
import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import kmq  # noqa: E402

KMQ_BIN = os.environ["KMQ_BIN"]
PHOTOS = os.environ["KMQ_PHOTOS"]
TMP = os.environ.get("KMQ_TEST_TMP", "/tmp")


def fresh(name):
    path = os.path.join(TMP, "python", name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def photo(name):
    return np.asarray(Image.open(os.path.join(PHOTOS, name)).convert("RGB"))


def small_image(seed=0, h=40, w=50, levels=24):
    """Few distinct colours with repeats, so ties and weights matter."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, levels, size=(h, w, 3)) * 10).astype(np.uint8)


def nearest(X, centers):
    d = ((X.astype(np.float64)[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return d.argmin(axis=1), d.min(axis=1)


# -- the same fit as `kmq quantize` -------------------------------------------

@pytest.mark.parametrize("name,k,seed,restarts", [("coffee.png", 8, 7, 3),
                                                  ("astronaut.png", 16, 0, 2)])
def test_same_fit_as_kmq_quantize(name, k, seed, restarts):
    out = fresh(f"quantize-{name}-{k}")
    img = photo(name)
    # The CLI reads a PNG the test wrote from the same pixels (a lossless
    # round trip), so both doors see identical colours.
    src = os.path.join(fresh(f"quantize-{name}-{k}-in"), "in.png")
    Image.fromarray(img).save(src)
    subprocess.run([KMQ_BIN, "quantize", src, "-k", str(k), "--seed", str(seed), "--restarts",
                    str(restarts), "-o", out, "-q"], check=True)
    with open(os.path.join(out, "in.png", "summary.json")) as f:
        result = json.load(f)["results"][0]
    png = Image.open(os.path.join(out, "in.png", f"k{k}.png"))

    km = kmq.KMeans(k, n_init=restarts, random_state=seed).fit(img)
    assert km.inertia_ == result["inertia"]  # the same bits
    assert km.n_iter_ == result["iterations"]
    assert km.converged_ == result["converged"]
    cli_palette = np.array([e["rgb"] for e in result["palette"]])
    assert np.array_equal(np.floor(km.cluster_centers_ + 0.5).astype(int), cli_palette)
    assert np.array_equal(np.bincount(km.labels_, minlength=k),
                          [e["pixels"] for e in result["palette"]])

    palette, index = kmq.quantize(img, k, restarts=restarts, seed=seed)
    assert np.array_equal(palette, cli_palette)
    assert np.array_equal(index, np.asarray(png))  # the PNG's palette indices
    assert np.array_equal(index.ravel(), km.labels_)


# -- against independent references -------------------------------------------

def test_result_is_a_lloyd_fixed_point_and_labels_are_nearest():
    X = small_image(1).reshape(-1, 3)
    km = kmq.KMeans(6, n_init=4, random_state=3, tol=0).fit(X)
    labels, d2 = nearest(X, km.cluster_centers_)
    assert np.array_equal(km.labels_, labels)
    assert km.inertia_ == pytest.approx(d2.sum(), rel=1e-12)
    assert km.converged_
    for j in range(km.cluster_centers_.shape[0]):  # tol = 0: centres are the cluster means
        np.testing.assert_allclose(km.cluster_centers_[j], X[labels == j].mean(axis=0),
                                   rtol=0, atol=1e-9)


def test_predict_on_new_data_is_the_nearest_centre():
    km = kmq.KMeans(5, random_state=0).fit(small_image(2))
    new = np.random.default_rng(9).integers(0, 256, size=(3000, 3), dtype=np.uint8)
    labels, d2 = nearest(new, km.cluster_centers_)
    assert np.array_equal(km.predict(new), labels)
    assert km.predict(new.reshape(60, 50, 3)).shape == (60, 50)
    assert km.score(new) == pytest.approx(-d2.sum(), rel=1e-12)
    np.testing.assert_allclose(km.transform(new).min(axis=1), np.sqrt(d2), rtol=1e-12)


def test_inertia_close_to_scikit_learn():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    X = photo("coffee.png")[::4, ::4].reshape(-1, 3).astype(np.float64)
    ours = kmq.KMeans(8, n_init=10, random_state=0).fit(X.astype(np.uint8)).inertia_
    theirs = sklearn_cluster.KMeans(8, n_init=10, random_state=0).fit(X).inertia_
    assert ours <= theirs * 1.01


# -- data conventions -----------------------------------------------------------

def test_float_input_in_0_1_gives_the_same_fit_scaled():
    img = small_image(3)
    a = kmq.KMeans(7, random_state=5).fit(img)
    b = kmq.KMeans(7, random_state=5).fit(img / 255.0)
    np.testing.assert_allclose(b.cluster_centers_ * 255.0, a.cluster_centers_, rtol=1e-12)
    assert b.inertia_ * 255.0 ** 2 == pytest.approx(a.inertia_, rel=1e-12)
    assert np.array_equal(a.labels_, b.labels_)
    # Integer arrays of any dtype are 8-bit colours.
    c = kmq.KMeans(7, random_state=5).fit(img.astype(np.int64))
    assert c.inertia_ == a.inertia_


@pytest.mark.parametrize("bad,words", [
    (np.full((10, 3), 1.5), "[0, 1]"),
    (np.full((10, 3), np.nan), "NaN"),
    (np.full((10, 3), 256), "0..255"),
    (np.full((10, 3), -1), "0..255"),
    (np.zeros((10, 4), np.uint8), "3 colour"),
    (np.zeros((10,), np.uint8), "3 colour"),
    (np.zeros((0, 3), np.uint8), "no colours"),
    (np.array([["a", "b", "c"]]), "numbers"),
])
def test_bad_data_is_a_value_error_that_says_why(bad, words):
    with pytest.raises(ValueError, match=None) as info:
        kmq.KMeans(1).fit(bad)
    assert words in str(info.value)


@pytest.mark.parametrize("params,words", [
    ({"n_clusters": 0}, "n_clusters"), ({"n_clusters": 257}, "n_clusters"),
    ({"n_init": 0}, "n_init"), ({"max_iter": 0}, "max_iter"), ({"tol": -1.0}, "tol"),
    ({"init": "kmeans||"}, "init"), ({"random_state": -1}, "random_state"),
    ({"n_threads": 0}, "n_threads"),
])
def test_bad_parameters_are_value_errors_at_fit(params, words):
    km = kmq.KMeans(**{"n_clusters": 2, **params})  # __init__ only stores them
    with pytest.raises(ValueError) as info:
        km.fit(small_image(4))
    assert words in str(info.value)


def test_fewer_colours_than_clusters_warns_and_fits_that_many():
    X = np.array([[0, 0, 0], [255, 255, 255]] * 10, dtype=np.uint8)
    with pytest.warns(UserWarning, match="2 distinct colours"):
        km = kmq.KMeans(4, random_state=0).fit(X)
    assert km.cluster_centers_.shape == (2, 3) and km.inertia_ == 0
    with pytest.raises(ValueError, match="n_samples"):
        kmq.KMeans(4).fit(X[:3])


def test_same_results_for_any_thread_count():
    img = photo("coffee.png")[::2, ::2]
    fits = [kmq.KMeans(12, n_init=3, random_state=1, n_threads=t).fit(img) for t in (1, 2, 3)]
    for f in fits[1:]:
        assert f.inertia_ == fits[0].inertia_
        assert np.array_equal(f.cluster_centers_, fits[0].cluster_centers_)
        assert np.array_equal(f.labels_, fits[0].labels_)


def test_random_state_conventions():
    img = small_image(5)
    a = kmq.KMeans(9, init="random", random_state=np.random.RandomState(4)).fit(img)
    b = kmq.KMeans(9, init="random", random_state=np.random.RandomState(4)).fit(img)
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    kmq.KMeans(9, random_state=np.random.default_rng(1)).fit(img)
    kmq.KMeans(9, random_state=None).fit(img)


# -- scikit-learn's estimator conventions ---------------------------------------

def test_get_params_set_params_clone():
    base = pytest.importorskip("sklearn.base")
    km = kmq.KMeans(5, n_init=3, tol=0.0, random_state=2)
    assert km.get_params() == {"n_clusters": 5, "n_init": 3, "max_iter": 300, "tol": 0.0,
                               "init": "k-means++", "random_state": 2, "n_threads": None}
    assert km.set_params(max_iter=7, init="random") is km
    assert km.max_iter == 7 and km.init == "random"
    with pytest.raises(ValueError, match="invalid parameter"):
        km.set_params(n_components=3)
    km.fit(small_image(6))
    twin = base.clone(km)
    assert twin.get_params() == km.get_params()
    assert not hasattr(twin, "cluster_centers_")
    twin.fit(small_image(6))
    assert np.array_equal(twin.cluster_centers_, km.cluster_centers_)


def test_scikit_learn_parameter_checks():
    checks = pytest.importorskip("sklearn.utils.estimator_checks")
    est = kmq.KMeans()
    checks.check_parameters_default_constructible("KMeans", est)
    checks.check_get_params_invariance("KMeans", est)
    checks.check_set_params("KMeans", est)
    checks.check_no_attributes_set_in_init("KMeans", est)
    checks.check_estimators_unfitted("KMeans", est)


def test_fit_returns_self_and_fit_predict_matches_labels():
    img = small_image(7)
    km = kmq.KMeans(4, random_state=0)
    assert km.fit(img) is km
    assert np.array_equal(kmq.KMeans(4, random_state=0).fit_predict(img), km.labels_)
    assert np.array_equal(km.predict(img).ravel(), km.labels_)
    assert km.labels_.dtype == np.int32 and km.n_features_in_ == 3


def test_package_and_library_versions_agree():
    assert kmq.__version__ == kmq.library_version()


def test_predict_before_fit_is_not_fitted_error():
    with pytest.raises(kmq.NotFittedError):
        kmq.KMeans().predict(np.zeros((2, 3), np.uint8))


def test_sample_weight_equals_repeated_rows():
    rng = np.random.default_rng(8)
    X = rng.integers(0, 256, size=(300, 3), dtype=np.uint8)
    w = rng.integers(0, 4, size=300)
    weighted = kmq.KMeans(6, random_state=3).fit(X, sample_weight=w)
    repeated = kmq.KMeans(6, random_state=3).fit(np.repeat(X, w, axis=0))
    np.testing.assert_array_equal(weighted.cluster_centers_, repeated.cluster_centers_)
    assert weighted.inertia_ == repeated.inertia_
    # Rows of weight 0 are left out of the fit but labelled by the nearest centre.
    assert np.array_equal(weighted.labels_, nearest(X, weighted.cluster_centers_)[0])
    ones = kmq.KMeans(6, random_state=3).fit(X, sample_weight=np.ones(300))
    plain = kmq.KMeans(6, random_state=3).fit(X)
    assert ones.inertia_ == plain.inertia_
    with pytest.raises(ValueError, match="whole numbers"):
        kmq.KMeans(6).fit(X, sample_weight=np.full(300, 0.5))
    with pytest.raises(ValueError, match="entries"):
        kmq.KMeans(6).fit(X, sample_weight=np.ones(3))


# -- quantize and read_run --------------------------------------------------------

def test_quantize_checks_its_arguments():
    img = small_image(9)
    with pytest.raises(ValueError, match="height, width, 3"):
        kmq.quantize(np.zeros((4, 4, 4), np.uint8), 2)
    with pytest.raises(ValueError, match="k = 0"):
        kmq.quantize(img, 0)
    with pytest.raises(ValueError, match="restarts"):
        kmq.quantize(img, 2, restarts=0)
    palette, index = kmq.quantize(img, 3)
    assert palette.shape == (3, 3) and palette.dtype == np.uint8
    assert index.shape == img.shape[:2] and index.max() < 3


def test_read_run_rows():
    out = fresh("run")
    inputs = os.path.join(out, "in")
    os.makedirs(inputs)
    shutil.copy(os.path.join(PHOTOS, "coffee.png"), inputs)
    with open(os.path.join(inputs, "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    job = os.path.join(out, "job.ini")
    with open(job, "w") as f:
        f.write("[run]\noutput = res\n[defaults]\nk = 2, 4\nrestarts = 1\n"
                "[job j]\ninput = in\n")
    proc = subprocess.run([KMQ_BIN, "run", job, "-q"])
    assert proc.returncode == 1  # one image failed
    rows = kmq.read_run(os.path.join(out, "res"), as_frame=False)
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r for r in rows if r["status"] == "error"]
    assert [r["k"] for r in ok] == [2, 4] and all(r["image"] == "coffee.png" for r in ok)
    with open(os.path.join(out, "res", ok[0]["summary"])) as f:
        assert json.load(f)["results"][0]["inertia"] == ok[0]["inertia"]
    assert len(bad) == 1 and bad[0]["error"] == "decode_failed" and bad[0]["k"] is None
    try:
        import pandas  # noqa: F401
    except ImportError:
        assert kmq.read_run(os.path.join(out, "res")) == rows
        with pytest.raises(ImportError):
            kmq.read_run(os.path.join(out, "res"), as_frame=True)
    else:
        assert len(kmq.read_run(os.path.join(out, "res"))) == len(rows)
    with pytest.raises(FileNotFoundError, match="run.json"):
        kmq.read_run(out)


if __name__ == "__main__":
    warnings.simplefilter("default")
    sys.exit(pytest.main([__file__, "-q"]))
