"""kmq quantize: one image, image folder directly under OUTDIR; k above the
number of distinct colours fits k_effective clusters and is lossless."""
import os
import unittest

from PIL import Image

import kmqtest as kt


class Quantize(unittest.TestCase):
    def test_layout_and_numbers(self):
        d = kt.fresh_dir("quantize")
        out = os.path.join(d, "o")
        kt.run("quantize", os.path.join(kt.PHOTOS, "coffee.png"), "-k", "3,7", "-o", out,
               "--restarts", "2", "--seed", "5", "--quiet", check_code=0)
        folder = os.path.join(out, "coffee.png")
        # results, summary, and the report's files at the default report =
        # light (README "Outputs"): the image's page and its thumbnail
        self.assertEqual(sorted(os.listdir(folder)),
                         ["index.html", "k3.png", "k7.png", "summary.json", "thumb.jpg"])
        # report = full adds the charts: two k values, so no elbow.svg, and
        # a colour-space chart for each k
        full = os.path.join(d, "full")
        kt.run("quantize", os.path.join(kt.PHOTOS, "coffee.png"), "-k", "3,7", "-o", full,
               "--restarts", "2", "--seed", "5", "--report", "full", "--quiet", check_code=0)
        self.assertEqual(sorted(os.listdir(os.path.join(full, "coffee.png"))),
                         ["index.html", "k3.colors.svg", "k3.palette.svg", "k3.png",
                          "k7.colors.svg", "k7.palette.svg", "k7.png", "preview.jpg",
                          "restarts.svg", "summary.json", "thumb.jpg"])
        s = kt.load_json(os.path.join(folder, "summary.json"))
        self.assertEqual(s["config"]["k"], [3, 7])
        self.assertEqual(s["config"]["seed"], 5)
        self.assertEqual(kt.png_header(os.path.join(folder, "k3.png"))[2], 2)
        self.assertEqual(kt.png_header(os.path.join(folder, "k7.png"))[2], 4)
        self.assertTrue(os.path.exists(os.path.join(out, "run.json")))

    def test_format_modules_load_only_when_needed(self):
        # libvips' optional modules (vips-modules-*/*.so: ImageMagick, HEIF,
        # PDF, ...) are loaded on the first file the built-in loaders do not
        # know (image_vips.c). LD_DEBUG=files makes the dynamic loader name
        # every object it opens, on stderr.
        d = kt.fresh_dir("quantize-modules")
        img = Image.open(os.path.join(kt.PHOTOS, "coffee.png")).convert("RGB").resize((48, 32))
        png, bmp = os.path.join(d, "small.png"), os.path.join(d, "small.bmp")
        img.save(png)
        img.save(bmp)  # BMP: only libvips' ImageMagick module reads it
        env = dict(os.environ, LD_DEBUG="files")
        results = {}
        for path in (png, bmp):
            out = os.path.join(d, "o-" + os.path.basename(path))
            # ImageMagick is outside the default formats: the job names it.
            proc = kt.run("quantize", path, "-k", "4", "-o", out, "--seed", "3", "--quiet",
                          "--formats", "png,magick", env=env, check_code=0)
            results[path] = (proc.stderr, kt.load_json(
                os.path.join(out, os.path.basename(path), "summary.json"))["results"][0])
        self.assertNotIn("vips-modules-", results[png][0])
        self.assertIn("vips-modules-", results[bmp][0])
        # Same pixels, same fit, whichever loader read them.
        self.assertEqual(results[png][1]["palette"], results[bmp][1]["palette"])
        self.assertEqual(results[png][1]["inertia"], results[bmp][1]["inertia"])

    def test_k_above_distinct_colours_is_lossless(self):
        d = kt.fresh_dir("quantize-few")
        img = Image.new("RGB", (31, 17))
        colours = [(255, 0, 0), (0, 128, 255), (10, 20, 30)]
        img.putdata([colours[(x * 3 + y) % 3] for y in range(17) for x in range(31)])
        path = os.path.join(d, "three.png")
        img.save(path)
        out = os.path.join(d, "o")
        kt.run("quantize", path, "-k", "2,3,8", "-o", out, "--quiet", check_code=0)
        s = kt.load_json(os.path.join(out, "three.png", "summary.json"))
        self.assertEqual(s["input"]["unique_colors"], 3)
        r2, r3, r8 = s["results"]
        self.assertEqual((r2["k_effective"], r3["k_effective"], r8["k_effective"]), (2, 3, 3))
        for r in (r3, r8):
            self.assertEqual(r["inertia"], 0)
            self.assertEqual(r["mse_output"], 0)
            self.assertIsNone(r["psnr_db"])
            self.assertEqual(len(r["palette"]), 3)
            png = os.path.join(out, "three.png", f"k{r['k']}.png")
            self.assertEqual(kt.png_header(png)[2], 2)
            self.assertEqual(Image.open(png).convert("RGB").tobytes(), img.tobytes())
        self.assertGreater(r2["inertia"], 0)

    def test_k_1_gives_the_mean_colour(self):
        d = kt.fresh_dir("quantize-mean")
        img = Image.new("RGB", (4, 1))
        img.putdata([(0, 0, 0), (0, 0, 0), (0, 0, 0), (200, 100, 40)])
        path = os.path.join(d, "four.png")
        img.save(path)
        out = os.path.join(d, "o")
        kt.run("quantize", path, "-k", "1", "-o", out, "--quiet", check_code=0)
        r = kt.load_json(os.path.join(out, "four.png", "summary.json"))["results"][0]
        self.assertEqual(r["palette"][0]["rgb"], [50, 25, 10])
        # Hand-computed: mean (50, 25, 10); three pixels at distance²
        # 50²+25²+10² = 3225 and one at 150²+75²+30² = 29025.
        self.assertEqual(r["inertia"], 3 * 3225 + 29025)
        self.assertEqual(kt.png_header(os.path.join(out, "four.png", "k1.png"))[2], 1)


if __name__ == "__main__":
    unittest.main()
