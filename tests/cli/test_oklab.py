"""Perceptual colour (docs/design.md, §18): space = oklab fits and maps in
OKLab, on the documented grid, and writes the palette in sRGB. Checked
against a numpy implementation of the published conversion: the fit is
k-means in OKLab (every grid point's label is its nearest cluster mean, at
convergence), the palette is each mean converted back; the colour
difference every summary reports (ΔE_OK mean and 95th percentile) equals a
recomputation from the input and the written PNG; OKLab lowers the mean
ΔE of the bundled photos; output is identical at any thread count and
streamed or whole; the key is validated, hashed, listed and shown."""
import os
import unittest

import numpy as np
from PIL import Image

import kmqtest as kt

M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
               [0.2119034982, 0.6806995451, 0.1073969566],
               [0.0883024619, 0.2817188376, 0.6299787005]])
M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
               [1.9779984951, -2.4285922050, 0.4505937099],
               [0.0259040371, 0.7827717662, -0.8086757660]])


def oklab(rgb):
    """(n, 3) uint8 sRGB -> (n, 3) OKLab, Ottosson's formulas."""
    v = rgb.astype(np.float64) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return np.cbrt(lin @ M1.T) @ M2.T


def srgb8(lab):
    """(n, 3) OKLab -> (n, 3) 8-bit sRGB (inverse matrices, clamped, rounded)."""
    lms = (lab @ np.linalg.inv(M2).T) ** 3
    lin = np.clip(lms @ np.linalg.inv(M1).T, 0, 1)
    v = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.floor(255 * v + 0.5).astype(np.int64)


def pixels(path):
    im = Image.open(path)
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
    return np.asarray(im.convert("RGB")).reshape(-1, 3)


def quantize(image, out, *extra, threads=2, env=None):
    # OKLab is an RGB space: chelsea_alpha.png is flattened (alpha = keep fits RGBA).
    kt.run("quantize", image, "--seed", "7", "--restarts", "2", "-o", out, "--quiet",
           "--alpha", "flatten",
           "--threads", str(threads), *extra, check_code=0, env=env)
    return kt.load_json(os.path.join(out, os.path.basename(image), "summary.json"))


def delta_e(image, png):
    """Per-pixel OKLab distance x 100 between the input and the written PNG."""
    written = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    return 100 * np.linalg.norm(oklab(pixels(image)) - oklab(written), axis=1)


class FitInOklab(unittest.TestCase):
    def test_kmeans_in_oklab_and_palette_back_in_srgb(self):
        d = kt.fresh_dir("oklab_fit")
        image = os.path.join(kt.PHOTOS, "coffee.png")
        s = quantize(image, d, "-k", "12", "--space", "oklab", "--tol", "0", "--max-iter",
                     "1000", "--save", "indexed,labels")
        self.assertEqual(s["config"]["space"], "oklab")
        r = s["results"][0]
        self.assertTrue(r["converged"])
        rgb = pixels(image)
        labels = np.asarray(Image.open(os.path.join(d, "coffee.png", "k12.labels.png"))).ravel()
        # The grid of docs/design.md: L, a, b times 255, a and b + 128.
        grid = np.floor(oklab(rgb) * 255 + np.array([0, 128, 128]) + 0.5)
        keys = (grid[:, 0] * 65536 + grid[:, 1] * 256 + grid[:, 2]).astype(np.int64)
        uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
        point_labels = labels[first]
        # Every pixel of a grid point has that point's label.
        inverse = np.searchsorted(uniq, keys)
        self.assertTrue(np.array_equal(labels, point_labels[inverse]))
        points = grid[first]
        k = r["k_effective"]
        means = np.array([np.average(points[point_labels == j], axis=0,
                                     weights=counts[point_labels == j]) for j in range(k)])
        # At convergence each grid point is labelled with its nearest mean.
        dist = ((points[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
        nearest = dist.argmin(axis=1)
        ties = np.sort(dist, axis=1)[:, 1] - dist.min(axis=1) < 1e-9
        self.assertTrue(np.array_equal(nearest[~ties], point_labels[~ties]))
        # The palette is each mean, back from the grid to OKLab to sRGB.
        lab = (means - np.array([0, 128, 128])) / 255
        expected = srgb8(lab)
        palette = np.array([e["rgb"] for e in r["palette"]])
        self.assertLessEqual(np.abs(palette - expected).max(), 1)  # rounding at .5 only
        self.assertGreater((palette == expected).all(axis=1).mean(), 0.9)
        # The PNG's PLTE is that palette, and mse_output is in RGB.
        written = np.asarray(Image.open(os.path.join(d, "coffee.png", "k12.png")).convert("RGB"))
        err = ((written.reshape(-1, 3).astype(np.float64) - rgb) ** 2).sum(axis=1).mean()
        self.assertAlmostEqual(err, r["mse_output"], delta=1e-9 * err)


class ColourDifference(unittest.TestCase):
    def test_delta_e_against_numpy_in_both_spaces(self):
        d = kt.fresh_dir("oklab_de")
        image = os.path.join(kt.PHOTOS, "china.jpg")
        for space in ("rgb", "oklab"):
            s = quantize(image, os.path.join(d, space), "-k", "4,16", "--space", space)
            for r in s["results"]:
                de = delta_e(image, os.path.join(d, space, "china.jpg", f"k{r['k']}.png"))
                self.assertAlmostEqual(r["delta_e_mean"], de.mean(), delta=1e-4)
                p95 = np.percentile(de, 95, method="inverted_cdf")
                self.assertAlmostEqual(r["delta_e_p95"], p95, delta=1e-3)

    def test_delta_e_under_dither_is_the_label_maps(self):
        """Like mse_output, ΔE under dither measures the nearest-centre
        labels (the undithered image), not the dithered PNG."""
        d = kt.fresh_dir("oklab_de_dither")
        image = os.path.join(kt.PHOTOS, "coffee.png")
        for space in ("rgb", "oklab"):
            out = os.path.join(d, space)
            s = quantize(image, out, "-k", "16", "--space", space, "--dither", "floyd-steinberg",
                         "--save", "indexed,labels")
            r = s["results"][0]
            palette = np.array([e["rgb"] for e in r["palette"]], dtype=np.uint8)
            labels = np.asarray(Image.open(os.path.join(out, "coffee.png", "k16.labels.png")))
            de = 100 * np.linalg.norm(oklab(pixels(image)) - oklab(palette[labels.ravel()]),
                                      axis=1)
            self.assertAlmostEqual(r["delta_e_mean"], de.mean(), delta=1e-4)
            self.assertAlmostEqual(r["delta_e_p95"],
                                   np.percentile(de, 95, method="inverted_cdf"), delta=1e-3)
            dithered = delta_e(image, os.path.join(out, "coffee.png", "k16.png"))
            self.assertGreater(dithered.mean(), r["delta_e_mean"])

    def test_oklab_lowers_mean_delta_e_on_every_bundled_photo(self):
        d = kt.fresh_dir("oklab_lower")
        for name in kt.BUNDLED:
            image = os.path.join(kt.PHOTOS, name)
            rgb = quantize(image, os.path.join(d, "rgb"), "-k", "16")["results"][0]
            ok = quantize(image, os.path.join(d, "oklab"), "-k", "16", "--space",
                          "oklab")["results"][0]
            with self.subTest(image=name):
                self.assertLess(ok["delta_e_mean"], rgb["delta_e_mean"])
                self.assertNotIn("space", kt.load_json(
                    os.path.join(d, "rgb", name, "summary.json"))["config"])


class Deterministic(unittest.TestCase):
    def test_threads_and_paths(self):
        image = os.path.join(kt.PHOTOS, "astronaut.png")

        def run(out, threads, env):
            s = quantize(image, out, "-k", "8,32", "--space", "oklab", threads=threads, env=env)
            return [(r["inertia"], r["delta_e_mean"], r["delta_e_p95"]) for r in s["results"]]
        seen = kt.outputs_by_threads_and_path(kt.fresh_dir("oklab_det"), run,
                                              ("astronaut.png/k8.png", "astronaut.png/k32.png"))
        first = seen[("stream", 1)]
        for key, value in seen.items():
            self.assertEqual(value, first, key)


class Keys(unittest.TestCase):
    def job(self, d, extra):
        return kt.write_job(os.path.join(d, "job.ini"),
                            f"[run]\noutput = out\n[job a]\ninput = "
                            f"{os.path.join(kt.PHOTOS, 'china.jpg')}\nk = 4\nrestarts = 1\n"
                            f"{extra}")

    def test_bad_values(self):
        for body, words in (("space = lab\n", "space = 'lab' is not one of rgb, oklab"),
                            ("space = oklab\npalette = shared\n", "space = oklab fits each")):
            d = kt.fresh_dir("oklab_bad")
            path = self.job(d, body)
            for cmd in ("run", "validate"):
                proc = kt.run(cmd, path)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(words, proc.stderr)
                self.assertRegex(proc.stderr, r"job\.ini:\d+:")
            self.assertFalse(os.path.exists(os.path.join(d, "out")))

    def test_validate_hash_resume_report(self):
        d = kt.fresh_dir("oklab_keys")
        out = kt.run("validate", self.job(d, "space = OKLab\n"), check_code=0).stdout
        self.assertRegex(out, r"space\s*=\s*oklab")
        summary = os.path.join(d, "out", "a", "china.jpg", "summary.json")
        kt.run("run", self.job(d, ""), "--quiet", check_code=0)
        plain = kt.load_json(summary)
        proc = kt.run("run", self.job(d, "space = rgb\n"), check_code=0)
        self.assertIn("1 already done", proc.stderr)
        proc = kt.run("run", self.job(d, "space = oklab\n"), check_code=0)
        self.assertNotIn("1 already done", proc.stderr)
        self.assertNotEqual(kt.load_json(summary)["config"]["hash"], plain["config"]["hash"])
        proc = kt.run("run", self.job(d, "space = oklab\n"), check_code=0)
        self.assertIn("1 already done", proc.stderr)
        with open(os.path.join(os.path.dirname(summary), "index.html")) as f:
            page = f.read()
        self.assertIn("fitted in OKLab", page)
        self.assertIn("\u0394E<sub>OK</sub> mean / p95", page)


if __name__ == "__main__":
    unittest.main()
