"""Peak memory does not depend on the image's width (issue "Hostile files and
run records that lie"): with many k and label maps, the map pass keeps the
labels of one strip for every k and one PNG writer per k and file kind, so
strips sized by a row count would grow with width x nk. A wide image peaks
within 10 % of the square image holding the same pixels, for smooth colours
(labels compress well) and for random ones (they do not, so the writers'
staged output is as large as the labels themselves). Both give the same
files, decoded to the right sizes, with the same labels rearranged."""
import os
import subprocess
import unittest

import numpy as np
from PIL import Image

import kmqtest as kt

# Square: SIDE x SIDE; wide: its BANDS row bands side by side; k = 1-KS.
# Smaller under the sanitizers, which check the code paths, not the peak:
# there the wide image still gets strips of 40 rows instead of 128.
SIDE = 500 if kt.SANITIZE else 800
BANDS = 10
KS = 32 if kt.SANITIZE else 64


def peak_rss_kib(args):
    """Peak resident memory of one kmq run (a fresh process), as GNU time
    reports it."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", kt.KMQ, *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.strip().splitlines()[-1])


def to_wide(a):
    """The square's row bands side by side: the same pixels, so the same
    histogram and fit, in a BANDS x wider, BANDS x shorter image."""
    return np.concatenate(np.split(a, BANDS, axis=0), axis=1)


def images(d):
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64) / SIDE
    smooth = np.stack([127.5 + 127.5 * np.sin(6.3 * xx + 2.0 * yy),
                       127.5 + 127.5 * np.cos(5.1 * yy - 1.3 * xx),
                       127.5 * (xx + yy)], axis=-1)
    smooth = np.rint(smooth).astype(np.uint8)
    # Random pixels from 4096 random colours: incompressible labels for
    # every k, while the fit and the labelling stay quick.
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, size=(4096, 3), dtype=np.uint8)
    noise = palette[rng.integers(0, len(palette), size=(SIDE, SIDE))]
    paths = {}
    for content, a in (("smooth", smooth), ("random", noise)):
        for shape, pixels in (("square", a), ("wide", to_wide(a))):
            path = os.path.join(d, f"{content}-{shape}.png")
            Image.fromarray(pixels, "RGB").save(path, compress_level=1)
            paths[content, shape] = path
    return paths


class WidthDoesNotCostMemory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("widemem")
        cls.paths = images(cls.dir)

    def run_job(self, content, shape):
        """Runs k = 1-KS with indexed PNGs and label maps; returns the peak
        RSS in KiB and the image's output folder. The fit is kept short: it
        does not touch the buffers measured."""
        name = f"{content}-{shape}"
        job = kt.write_job(os.path.join(self.dir, name + ".ini"), f"""
[run]
output = out-{name}
seed = 3
[job j]
input = {self.paths[content, shape]}
k = 1-{KS}
restarts = 1
max_iter = 5
sample = 5000
save = indexed, labels
""")
        peak = peak_rss_kib(["run", job, "--threads", "2", "--force", "--quiet"])
        return peak, os.path.join(self.dir, f"out-{name}", "j", name + ".png")

    def check(self, content):
        square_peak, square = self.run_job(content, "square")
        wide_peak, wide = self.run_job(content, "wide")
        print(f"{content}: peak RSS square {square_peak / 1024:.1f} MiB, "
              f"wide {wide_peak / 1024:.1f} MiB, ratio {wide_peak / square_peak:.3f}")
        for k in (1, 2, 17, KS):
            with Image.open(os.path.join(square, f"k{k}.labels.png")) as im:
                self.assertEqual(im.size, (SIDE, SIDE))
                square_labels = np.asarray(im)
            with Image.open(os.path.join(wide, f"k{k}.labels.png")) as im:
                self.assertEqual(im.size, (SIDE * BANDS, SIDE // BANDS))
                wide_labels = np.asarray(im)
            self.assertTrue(np.array_equal(to_wide(square_labels), wide_labels), k)
            with Image.open(os.path.join(square, f"k{k}.png")) as a, \
                    Image.open(os.path.join(wide, f"k{k}.png")) as b:
                self.assertEqual(a.size, (SIDE, SIDE))
                self.assertEqual(b.size, (SIDE * BANDS, SIDE // BANDS))
                self.assertEqual(a.getpalette(), b.getpalette())
                self.assertTrue(np.array_equal(to_wide(np.asarray(a)), np.asarray(b)), k)
        self.assertEqual(len([f for f in os.listdir(wide) if f.endswith(".labels.png")]), KS)
        if kt.SANITIZE:
            return  # peak memory means nothing under AddressSanitizer
        self.assertLessEqual(wide_peak, square_peak * 1.10,
                             f"{content}: the wide image peaked at {wide_peak} KiB, "
                             f"the square one at {square_peak} KiB")

    def test_smooth(self):
        self.check("smooth")

    def test_random(self):
        self.check("random")


if __name__ == "__main__":
    unittest.main(verbosity=2)
