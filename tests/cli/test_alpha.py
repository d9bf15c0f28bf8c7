"""Transparency (docs/design.md §19): alpha = keep fits premultiplied RGBA
and writes an indexed PNG with tRNS whose decoded RGBA (Pillow and libvips)
is palette[label] exactly; the summary's error is the RGBA error of the
design, recomputed here from the input and the written PNG; fully
transparent pixels share one entry; 16-bit and grey + alpha inputs work;
the output is identical at any thread count, streamed or whole; images
without alpha are untouched by the key; alpha = flatten is the RGB path;
the key is validated, hashed, listed, shown, and summaries of a kmq before
it are redone for images that may have alpha."""
import os
import struct
import subprocess
import unittest
import zlib

import numpy as np
from PIL import Image, ImageFilter

import kmqtest as kt


def ui_image(path):
    """A UI-style RGBA image: a rounded button with a vertical gradient and a
    soft drop shadow, an anti-aliased disc, on a transparent background."""
    w, h = 240, 160
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rgba = np.zeros((h, w, 4))
    sh = np.zeros((h, w))
    sh[40:130, 40:210] = 110
    shadow = np.asarray(Image.fromarray(sh.astype(np.uint8)).filter(ImageFilter.GaussianBlur(8)),
                        dtype=np.float64) / 255
    rgba[..., 3] = shadow  # black shadow
    button = ((np.clip(np.minimum(xx - 30, 200 - xx), 0, 1) *
               np.clip(np.minimum(yy - 30, 115 - yy), 0, 1)))
    top = np.array([70, 140, 230.0]) / 255
    bottom = np.array([20, 60, 160.0]) / 255
    t = np.clip((yy - 30) / 85, 0, 1)[..., None]
    colour = top * (1 - t) + bottom * t
    a = button
    rgba[..., :3] = colour * a[..., None] / np.maximum(a + rgba[..., 3] * (1 - a), 1e-9)[..., None]
    rgba[..., 3] = a + rgba[..., 3] * (1 - a)
    disc = np.clip(12.5 - np.hypot(xx - 195, yy - 35), 0, 1)
    rgba[..., :3] = np.where(disc[..., None] > 0,
                             (np.array([0.95, 0.3, 0.2]) * disc[..., None] +
                              rgba[..., :3] * rgba[..., 3:] * (1 - disc[..., None])) /
                             np.maximum(disc + rgba[..., 3] * (1 - disc), 1e-9)[..., None],
                             rgba[..., :3])
    rgba[..., 3] = disc + rgba[..., 3] * (1 - disc)
    out = np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8)
    out[out[..., 3] == 0, :3] = np.array([7, 200, 9], dtype=np.uint8)  # hidden RGB varies
    out[::3, ::5][out[::3, ::5, 3] == 0] = [250, 1, 120, 0]
    Image.fromarray(out, "RGBA").save(path)
    return out


def png16(path, rgba16):
    """Writes (h, w, 4) uint16 as a 16-bit RGBA PNG (colour type 6)."""
    h, w, _ = rgba16.shape
    raw = b"".join(b"\0" + rgba16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def rgba_of(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA")).reshape(-1, 4).astype(np.float64)


def rgba_error(src, out):
    """The design's RGBA error per pixel: sum over RGB of (a c - a' c')^2, a
    in 0..1, plus (A - A')^2."""
    a, b = src[:, 3:] / 255, out[:, 3:] / 255
    return ((a * src[:, :3] - b * out[:, :3]) ** 2).sum(axis=1) + (src[:, 3] - out[:, 3]) ** 2


def vips_rgba(path, workdir):
    """The PNG decoded by libvips (vips CLI), as (n, 4) RGBA."""
    raw = os.path.join(workdir, "decoded.raw")
    subprocess.run(["vips", "rawsave", path, raw], check=True, capture_output=True)
    with open(raw, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, 4).astype(np.float64)


def quantize(image, out, *extra, threads=2, env=None):
    kt.run("quantize", image, "--restarts", "2", "--seed", "4", "-o", out, "--quiet",
           "--threads", str(threads), "--save", "indexed,labels", *extra, check_code=0, env=env)
    return kt.load_json(os.path.join(out, os.path.basename(image), "summary.json"))


class Inputs:
    @classmethod
    def make(cls):
        d = kt.fresh_dir("alpha_inputs")
        cls.ui = os.path.join(d, "ui.png")
        ui_image(cls.ui)
        cls.wide = os.path.join(d, "deep.png")
        rng = np.random.default_rng(1)
        deep = (rng.integers(0, 65536, (60, 80, 4))).astype(np.uint16)
        deep[:20, :, 3] = 0
        deep[20:40, :, 3] = 65535
        png16(cls.wide, deep)
        cls.grey = os.path.join(d, "grey_alpha.png")
        la = np.stack([np.tile(np.arange(0, 256, 2, dtype=np.uint8), (50, 1)),
                       np.repeat(np.linspace(0, 255, 50).astype(np.uint8)[:, None], 128, 1)], -1)
        Image.fromarray(la, "LA").save(cls.grey)
        cls.chelsea = os.path.join(kt.PHOTOS, "chelsea_alpha.png")


class Keep(unittest.TestCase, Inputs):
    @classmethod
    def setUpClass(cls):
        cls.make()
        cls.d = kt.fresh_dir("alpha_keep")

    def check(self, image, k, clear_max=255):
        out = os.path.join(self.d, os.path.basename(image))
        s = quantize(image, out, "-k", str(k))
        name = os.path.basename(image)
        self.assertTrue(s["input"]["alpha"])
        self.assertEqual(s["config"]["alpha"], "keep")
        r = s["results"][0]
        png = os.path.join(out, name, f"k{k}.png")
        pal = np.array([e["rgb"] + [e["alpha"]] for e in r["palette"]], dtype=np.float64)
        with Image.open(os.path.join(out, name, f"k{k}.labels.png")) as im:
            labels = np.asarray(im).ravel()
        want = pal[labels]
        with Image.open(png) as im:
            self.assertIn("transparency", im.info)
        self.assertTrue(np.array_equal(rgba_of(png), want), "Pillow")
        self.assertTrue(np.array_equal(vips_rgba(png, self.d), want), "libvips")
        # The error against the source as Pillow reads it (8-bit inputs; the
        # 16-bit one is checked for its rows below).
        if name != "deep.png":
            src_px = rgba_of(image)
            err = rgba_error(src_px, want)
            self.assertAlmostEqual(r["mse_output"], err.mean(), delta=1e-9 * max(err.mean(), 1))
            self.assertAlmostEqual(r["psnr_db"], 10 * np.log10(4 * 255 ** 2 / err.mean()),
                                   places=9)
            # Every fully transparent pixel, whatever its RGB, has one label.
            clear = src_px[:, 3] == 0
            if clear.any():
                self.assertEqual(len(set(labels[clear].tolist())), 1)
                self.assertLessEqual(pal[labels[clear][0], 3], clear_max)
        return s

    def test_ui_image(self):
        self.check(self.ui, 16, clear_max=8)

    def test_chelsea(self):
        s = self.check(self.chelsea, 16)
        self.assertGreater(s["input"]["unique_colors"], 50000)

    def test_grey_alpha(self):
        s = self.check(self.grey, 8)
        pal = s["results"][0]["palette"]
        self.assertTrue(all(e["rgb"][0] == e["rgb"][1] == e["rgb"][2] for e in pal))

    def test_sixteen_bit(self):
        s = self.check(self.wide, 32)
        self.assertEqual(s["input"]["bands"], 4)
        # The transparent rows, of random RGB, share one entry.
        out = os.path.join(self.d, "deep.png", "deep.png")
        dec = rgba_of(os.path.join(out, "k32.png")).reshape(60, 80, 4)
        self.assertEqual(len({tuple(p) for p in dec[:20].reshape(-1, 4)}), 1)


class Deterministic(unittest.TestCase, Inputs):
    def test_threads_and_paths(self):
        self.make()
        seen = kt.outputs_by_threads_and_path(
            kt.fresh_dir("alpha_det"),
            lambda out, threads, env: quantize(self.ui, out, "-k", "4,12", threads=threads,
                                               env=env)["results"][1]["mse_output"],
            ("ui.png/k4.png", "ui.png/k12.png", "ui.png/k12.labels.png"))
        first = seen[("stream", 1)]
        for key, files in seen.items():
            self.assertEqual(files, first, key)


class FlattenAndKeys(unittest.TestCase, Inputs):
    @classmethod
    def setUpClass(cls):
        cls.make()

    def test_flatten_is_rgb(self):
        d = kt.fresh_dir("alpha_flatten")
        s = quantize(self.ui, d, "-k", "8", "--alpha", "flatten")
        self.assertEqual(s["config"]["alpha"], "flatten")
        png = os.path.join(d, "ui.png", "k8.png")
        with Image.open(png) as im:
            self.assertNotIn("transparency", im.info)
        self.assertNotIn("alpha", s["results"][0]["palette"][0])

    def test_images_without_alpha_are_untouched(self):
        d = kt.fresh_dir("alpha_none")
        china = os.path.join(kt.PHOTOS, "china.jpg")
        keep = quantize(china, os.path.join(d, "keep"), "-k", "8")
        flat = quantize(china, os.path.join(d, "flat"), "-k", "8", "--alpha", "flatten")
        self.assertFalse(keep["input"]["alpha"])
        self.assertNotIn("alpha", keep["config"])
        with open(os.path.join(d, "keep", "china.jpg", "k8.png"), "rb") as a, \
                open(os.path.join(d, "flat", "china.jpg", "k8.png"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(keep["results"][0]["mse_output"], flat["results"][0]["mse_output"])

    def job(self, d, extra):
        return kt.write_job(os.path.join(d, "job.ini"),
                            f"[run]\noutput = out\n[job a]\ninput = {self.ui}\nk = 4\n"
                            f"restarts = 1\n{extra}")

    def test_bad_value(self):
        d = kt.fresh_dir("alpha_bad")
        for cmd in ("run", "validate"):
            proc = kt.run(cmd, self.job(d, "alpha = premultiply\n"))
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn("job.ini:7:", proc.stderr)
            self.assertIn("alpha = 'premultiply' is not one of keep, flatten", proc.stderr)

    def test_validate_hash_resume_report_and_older_summaries(self):
        d = kt.fresh_dir("alpha_resume")
        out = kt.run("validate", self.job(d, "alpha = FLATTEN\n"), check_code=0).stdout
        self.assertRegex(out, r"alpha\s*=\s*flatten")
        summary = os.path.join(d, "out", "a", "ui.png", "summary.json")
        kt.run("run", self.job(d, ""), "--quiet", check_code=0)
        keep = kt.load_json(summary)
        with open(os.path.join(os.path.dirname(summary), "index.html")) as f:
            self.assertIn("alpha kept", f.read())
        proc = kt.run("run", self.job(d, "alpha = keep\n"), check_code=0)
        self.assertIn("1 already done", proc.stderr)
        proc = kt.run("run", self.job(d, "alpha = flatten\n"), check_code=0)
        self.assertNotIn("1 already done", proc.stderr)
        self.assertNotEqual(kt.load_json(summary)["config"]["hash"], keep["config"]["hash"])
        # A summary of a kmq before the key (no input.alpha) of a 4-band
        # image was flattened by that kmq: under keep it is redone.
        kt.run("run", self.job(d, ""), "--quiet", check_code=0)
        import json
        with open(summary) as f:
            doc = json.load(f)
        del doc["input"]["alpha"]
        del doc["config"]["alpha"]
        with open(summary, "w") as f:
            json.dump(doc, f)
        proc = kt.run("run", self.job(d, ""), check_code=0)
        self.assertNotIn("1 already done", proc.stderr)
        self.assertTrue(kt.load_json(summary)["input"]["alpha"])


if __name__ == "__main__":
    unittest.main()
