"""Dithering (docs/design.md, Dithering): dither = floyd-steinberg writes
error-diffused indexed PNGs that are exactly the documented integer
algorithm (checked against a reference written here), closer to the
original than the plain image once both are blurred, byte-identical at any
thread count and between the streamed and whole-image paths; the label map
stays the nearest-centre labels; the keys are validated with FILE:LINE and
are part of the config hash only when used."""
import math
import os
import subprocess
import unittest

import numpy as np
from PIL import Image, ImageFilter

import kmqtest as kt


def quantize(image, out, *extra, threads=2, env=None):
    # Dither diffuses RGB error: chelsea_alpha.png is flattened (alpha = keep is not dithered).
    return kt.run("quantize", image, "--restarts", "2", "--seed", "3", "-o", out, "--quiet",
                  "--alpha", "flatten",
                  "--threads", str(threads), *extra, check_code=0, env=env)


def result_dir(out, image):
    return os.path.join(out, os.path.basename(image))


def indices(path):
    im = Image.open(path)
    assert im.mode == "P", im.mode
    return np.asarray(im, dtype=np.int64)


def decoded_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def original_rgb(image):
    """The image as kmq sees it: alpha flattened onto white."""
    im = Image.open(image)
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return im.convert("RGB")


def tdiv(a, b):
    """C's integer division (truncates toward zero)."""
    return -((-a) // b) if a < 0 else a // b


def reference_fs(rgb, palette, strength, mse_output):
    """Floyd-Steinberg as docs/design.md defines it: integers in 1/128 of a
    level, strength rounded to 1/256, serpentine, error off the image
    dropped, errors whose squared length exceeds 4 * mse_output damped
    (received: 4/5; passed on: 3/4 of the strength), nearest entry by
    squared distance with the lowest index on ties. Straightforward two-row
    form, independent of kmq's one-row one."""
    limit = 4.0 * mse_output
    limit = 0 if limit > 3.0 * 255 * 255 else math.floor(limit * 128 * 128 + 0.5)
    h, w, _ = rgb.shape
    pal = [tuple(int(v) * 128 for v in p) for p in palette]
    s_int = int(np.floor(strength * 256 + 0.5))
    cur = np.zeros((w, 3), dtype=np.int64)
    out = np.zeros((h, w), dtype=np.int64)
    for y in range(h):
        nxt = np.zeros((w, 3), dtype=np.int64)
        forward = y % 2 == 0
        step = 1 if forward else -1
        for x in (range(w) if forward else range(w - 1, -1, -1)):
            got = [int(cur[x, c]) for c in range(3)]
            if limit and sum(g * g for g in got) > limit:
                got = [tdiv(g * 4, 5) for g in got]
            want = [min(max(int(rgb[y, x, c]) * 128 + got[c], 0), 255 * 128)
                    for c in range(3)]
            best, best_d = 0, None
            for i, p in enumerate(pal):
                d = sum((want[c] - p[c]) ** 2 for c in range(3))
                if best_d is None or d < best_d:
                    best, best_d = i, d
            out[y, x] = best
            strength_here = s_int
            if limit and sum((want[c] - pal[best][c]) ** 2 for c in range(3)) > limit:
                strength_here = tdiv(s_int * 3, 4)
            for c in range(3):
                s = tdiv((want[c] - pal[best][c]) * strength_here, 256)
                d7, d3, d5 = tdiv(s * 7, 16), tdiv(s * 3, 16), tdiv(s * 5, 16)
                d1 = s - d7 - d3 - d5
                ahead, behind = x + step, x - step
                if 0 <= ahead < w:
                    cur[ahead, c] += d7
                    nxt[ahead, c] += d1
                if 0 <= behind < w:
                    nxt[behind, c] += d3
                nxt[x, c] += d5
        cur = nxt
    return out


class MatchesReference(unittest.TestCase):
    def test_exact_algorithm(self):
        d = kt.fresh_dir("dither_ref")
        src = original_rgb(os.path.join(kt.PHOTOS, "coffee.png")).crop((150, 100, 211, 147))
        image = os.path.join(d, "crop.png")
        src.save(image)
        rgb = np.asarray(src, dtype=np.int64)
        for strength in ("1", "0.6"):
            out = os.path.join(d, "s" + strength)
            quantize(image, out, "-k", "5,16", "--dither", "floyd-steinberg",
                     "--dither-strength", strength)
            summary = kt.load_json(os.path.join(result_dir(out, image), "summary.json"))
            for k, result in zip((5, 16), summary["results"]):
                png = os.path.join(result_dir(out, image), f"k{k}.png")
                want = reference_fs(rgb, kt.png_palette(png), float(strength),
                                    result["mse_output"])
                np.testing.assert_array_equal(indices(png), want, f"k={k} strength={strength}")


class Quality(unittest.TestCase):
    def test_blurred_dither_is_closer(self):
        d = kt.fresh_dir("dither_blur")
        for name in kt.BUNDLED:
            image = os.path.join(kt.PHOTOS, name)
            plain, dith = os.path.join(d, "plain"), os.path.join(d, "dith")
            quantize(image, plain, "-k", "8,16", "--save", "indexed,labels")
            quantize(image, dith, "-k", "8,16", "--save", "indexed,labels", "--dither",
                     "floyd-steinberg")
            blur = ImageFilter.GaussianBlur(1.5)
            ref = np.asarray(original_rgb(image).filter(blur), dtype=np.float64)
            for k in (8, 16):
                p = os.path.join(result_dir(plain, image), f"k{k}")
                q = os.path.join(result_dir(dith, image), f"k{k}")
                err_plain = ((np.asarray(Image.open(p + ".png").convert("RGB").filter(blur),
                                         dtype=np.float64) - ref) ** 2).mean()
                err_dith = ((np.asarray(Image.open(q + ".png").convert("RGB").filter(blur),
                                        dtype=np.float64) - ref) ** 2).mean()
                self.assertLess(err_dith, err_plain, f"{name} k={k}")
                # Same fit, same palette; the label map is not dithered.
                self.assertEqual(kt.png_palette(p + ".png"), kt.png_palette(q + ".png"))
                with open(p + ".labels.png", "rb") as a, open(q + ".labels.png", "rb") as b:
                    self.assertEqual(a.read(), b.read(), f"{name} k={k} labels")
                # The dithered file decodes the same through libvips.
                w, h, pix = kt.vips_decode_rgb(q + ".png", d)
                np.testing.assert_array_equal(
                    np.frombuffer(pix, dtype=np.uint8).reshape(h, w, 3),
                    np.asarray(Image.open(q + ".png").convert("RGB")))
                pal = np.array(kt.png_palette(q + ".png"), dtype=np.uint8)
                np.testing.assert_array_equal(pal[indices(q + ".png")],
                                              np.asarray(Image.open(q + ".png").convert("RGB")))
            summary = kt.load_json(os.path.join(result_dir(dith, image), "summary.json"))
            self.assertEqual(summary["config"]["dither"], "floyd-steinberg")
            self.assertEqual(summary["config"]["dither_strength"], 1.0)

    def test_strength_zero_is_plain(self):
        d = kt.fresh_dir("dither_zero")
        image = os.path.join(kt.PHOTOS, "china.jpg")
        quantize(image, os.path.join(d, "plain"), "-k", "8")
        quantize(image, os.path.join(d, "zero"), "-k", "8", "--dither", "floyd-steinberg",
                 "--dither-strength", "0")
        with open(os.path.join(d, "plain", "china.jpg", "k8.png"), "rb") as a, \
                open(os.path.join(d, "zero", "china.jpg", "k8.png"), "rb") as b:
            self.assertEqual(a.read(), b.read())


class Deterministic(unittest.TestCase):
    def test_threads_and_paths(self):
        # astronaut is 512 rows: several strips when streamed, one piece whole.
        image = os.path.join(kt.PHOTOS, "astronaut.png")
        seen = kt.outputs_by_threads_and_path(
            kt.fresh_dir("dither_det"),
            lambda out, threads, env: quantize(image, out, "-k", "4,16,64", "--dither",
                                               "floyd-steinberg", "--dither-strength", "0.85",
                                               threads=threads, env=env),
            [f"astronaut.png/k{k}.png" for k in (4, 16, 64)])
        first = seen[("stream", 1)][0]
        for key, (data, _) in seen.items():
            self.assertEqual(data, first, key)


def peak_rss_kib(args, env):
    """Peak resident memory of one kmq run, as GNU time reports it."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", kt.KMQ, *args], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.strip().splitlines()[-1])


@unittest.skipIf(kt.SANITIZE, "peak memory is meaningless under AddressSanitizer")
class MemoryBound(unittest.TestCase):
    def test_dither_keeps_the_map_pass_bound(self):
        # A wide image streamed in strips (7,200 x 1,600): one row of error
        # per k is all dithering adds, taken from the strip budget.
        d = kt.fresh_dir("dither_mem")
        subprocess.run(["vips", "replicate", os.path.join(kt.PHOTOS, "coffee.png"),
                        f"{d}/wide.v", "12", "4"], check=True, capture_output=True)
        env = dict(os.environ, KMQ_IMAGE_MODE="stream")
        base = [f"{d}/wide.v", "-k", "4,16,64", "--restarts", "1", "--max-iter", "10",
                "--sample", "100000", "--threads", "2", "--quiet"]
        plain = peak_rss_kib(["quantize", *base, "-o", f"{d}/plain"], env)
        dith = peak_rss_kib(["quantize", *base, "-o", f"{d}/dith", "--dither",
                             "floyd-steinberg"], env)
        self.assertLessEqual(dith, plain * 1.05 + 4096, f"plain {plain} KiB, dithered {dith} KiB")


class Keys(unittest.TestCase):
    def job(self, d, extra):
        return kt.write_job(os.path.join(d, "job.ini"),
                            f"[run]\noutput = out\n[job a]\ninput = "
                            f"{os.path.join(kt.PHOTOS, 'china.jpg')}\nk = 4\nrestarts = 1\n"
                            f"{extra}")

    def test_bad_values(self):
        for body, words in (("dither = yes\n", "dither = 'yes' is not one of none, "
                                                "floyd-steinberg"),
                            ("dither_strength = 1.5\n", "dither_strength = 1.5 is outside 0..1"),
                            ("dither_strength = -0.1\n", "outside 0..1"),
                            ("dither_strength = half\n", "dither_strength = 'half' is not a number")):
            d = kt.fresh_dir("dither_bad")
            job = self.job(d, body)
            for cmd in ("run", "validate"):
                proc = kt.run(cmd, job)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn("job.ini:7:", proc.stderr)
                self.assertIn(words, proc.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "out")))
        proc = kt.run("quantize", os.path.join(kt.PHOTOS, "china.jpg"), "-k", "4", "--dither",
                      "atkinson", "-o", os.path.join(d, "q"))
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("dither = 'atkinson'", proc.stderr)

    def test_validate_lists_keys(self):
        d = kt.fresh_dir("dither_validate")
        out = kt.run("validate", self.job(d, "dither = Floyd-Steinberg\ndither_strength = 0.5\n"),
                     check_code=0).stdout
        self.assertRegex(out, r"dither\s*=?\s*floyd-steinberg")
        self.assertRegex(out, r"dither_strength\s*=?\s*0\.5")

    def test_hash_and_resume(self):
        d = kt.fresh_dir("dither_resume")
        summary = os.path.join(d, "out", "a", "china.jpg", "summary.json")
        kt.run("run", self.job(d, ""), "--quiet", check_code=0)
        plain = kt.load_json(summary)
        self.assertNotIn("dither", plain["config"])
        # Spelling out the default changes nothing: the image is done.
        proc = kt.run("run", self.job(d, "dither = none\ndither_strength = 0.3\n"), check_code=0)
        self.assertIn("1 already done", proc.stderr)
        # Turning dither on redoes it; so does another strength.
        proc = kt.run("run", self.job(d, "dither = floyd-steinberg\n"), check_code=0)
        self.assertNotIn("1 already done", proc.stderr)
        on = kt.load_json(summary)
        self.assertNotEqual(on["config"]["hash"], plain["config"]["hash"])
        # The image's own page (linked from the overview) says so.
        with open(os.path.join(os.path.dirname(summary), "index.html")) as f:
            self.assertIn("dithered (floyd-steinberg, strength 1)", f.read())
        proc = kt.run("run", self.job(d, "dither = floyd-steinberg\n"), check_code=0)
        self.assertIn("1 already done", proc.stderr)
        proc = kt.run("run", self.job(d, "dither = floyd-steinberg\ndither_strength = 0.5\n"),
                      check_code=0)
        self.assertNotIn("1 already done", proc.stderr)
        half = kt.load_json(summary)
        self.assertEqual(half["config"]["dither_strength"], 0.5)
        self.assertNotEqual(half["config"]["hash"], on["config"]["hash"])


if __name__ == "__main__":
    unittest.main()
