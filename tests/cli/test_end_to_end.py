"""kmq run on the bundled photos: every output of docs/design.md is there, every
indexed PNG decodes (through libvips and through Pillow) to exactly the
palette colours of its labels, palettes equal the summaries, bit depths are
minimal, and run.json / elbow.csv agree with the summaries."""
import csv
import math
import os
import unittest

from PIL import Image

import kmqtest as kt

K_LIST = [2, 5, 16]


def minimal_depth(n):
    return next(d for d in (1, 2, 4, 8) if n <= (1 << d))


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("e2e")
        cls.out = os.path.join(cls.dir, "out")
        cls.job = kt.write_job(os.path.join(cls.dir, "job.ini"), f"""
[run]
output = out
seed = 3
[defaults]
k = {", ".join(map(str, K_LIST))}
restarts = 2
save = indexed, labels, palette
alpha = flatten     ; the RGB path; alpha = keep: test_alpha.py
[job photos]
input = {kt.PHOTOS}
""")
        cls.proc = kt.run("run", cls.job, "--threads", "2", check_code=0)

    def image_dir(self, name):
        return os.path.join(self.out, "photos", name)

    def test_every_photo_has_its_files(self):
        for name in kt.BUNDLED:
            d = self.image_dir(name)
            files = set(os.listdir(d))
            for k in K_LIST:
                self.assertIn(f"k{k}.png", files)
                self.assertIn(f"k{k}.labels.png", files)
                self.assertIn(f"k{k}.palette.png", files)
            self.assertIn("summary.json", files)
            self.assertFalse([f for f in files if f.startswith(".kmq-tmp")], files)
        top = set(os.listdir(self.out))
        self.assertTrue({"run.json", "elbow.csv", "photos"} <= top, top)

    def test_summary_fields(self):
        for name in kt.BUNDLED:
            s = kt.load_json(os.path.join(self.image_dir(name), "summary.json"))
            self.assertEqual(s["schema"], 1)
            self.assertEqual(s["status"], "ok")
            self.assertIsNone(s["error"])
            inp = s["input"]
            img = Image.open(os.path.join(kt.PHOTOS, name))
            self.assertEqual((inp["width"], inp["height"]), img.size)
            self.assertEqual(inp["pixels"], img.size[0] * img.size[1])
            self.assertEqual(inp["bytes"], os.path.getsize(os.path.join(kt.PHOTOS, name)))
            self.assertGreater(inp["unique_colors"], 1000)
            cfg = s["config"]
            self.assertEqual(cfg["k"], K_LIST)
            self.assertEqual(cfg["restarts"], 2)
            self.assertEqual(cfg["seed"], 3)
            self.assertEqual(cfg["init"], "kmeans++")
            self.assertEqual(len(cfg["hash"]), 16)
            self.assertEqual([r["k"] for r in s["results"]], K_LIST)
            for r in s["results"]:
                self.assertEqual(r["k_effective"], r["k"])
                self.assertEqual(len(r["palette"]), r["k"])
                self.assertAlmostEqual(r["mse"], r["inertia"] / inp["pixels"], places=9)
                self.assertGreaterEqual(r["mse_output"], 0)
                self.assertAlmostEqual(r["psnr_db"],
                                       10 * math.log10(3 * 255 ** 2 / r["mse_output"]), places=9)
                self.assertEqual(r["restarts"]["count"], 2)
                self.assertEqual(len(r["restarts"]["inertia"]), 2)
                best = r["restarts"]["best"]
                self.assertEqual(min(r["restarts"]["inertia"]), r["restarts"]["inertia"][best])
                self.assertEqual(sum(p["pixels"] for p in r["palette"]), inp["pixels"])
                for p in r["palette"]:
                    self.assertEqual(p["hex"], "#%02x%02x%02x" % tuple(p["rgb"]))
                c = r["compression"]
                self.assertEqual(c["raw_bytes"], inp["pixels"] * 3)
                bits = math.ceil(math.log2(r["k_effective"]))
                self.assertEqual(c["packed_bytes"],
                                 math.ceil(inp["pixels"] * bits / 8) + 3 * r["k_effective"])
                png = os.path.join(self.image_dir(name), f"k{r['k']}.png")
                self.assertEqual(c["png_bytes"], os.path.getsize(png))
                self.assertEqual(r["files"]["indexed"]["bytes"], os.path.getsize(png))
                self.assertAlmostEqual(c["ratio_vs_raw"], c["raw_bytes"] / c["png_bytes"])
                self.assertAlmostEqual(c["ratio_vs_input"], inp["bytes"] / c["png_bytes"])
            # More clusters never fit worse here (same seed family, k-means++).
            inertias = [r["inertia"] for r in s["results"]]
            self.assertEqual(inertias, sorted(inertias, reverse=True))

    def test_indexed_png_is_exact(self):
        work = kt.fresh_dir("e2e-decode")
        for name in kt.BUNDLED:
            s = kt.load_json(os.path.join(self.image_dir(name), "summary.json"))
            for r in s["results"]:
                png = os.path.join(self.image_dir(name), f"k{r['k']}.png")
                palette = [tuple(p["rgb"]) for p in r["palette"]]
                width, height, depth, color_type = kt.png_header(png)
                self.assertEqual(color_type, 3)  # palette
                self.assertEqual(depth, minimal_depth(len(palette)))
                self.assertEqual(r["files"]["indexed"]["bits_per_pixel"], depth)
                self.assertEqual(kt.png_palette(png), palette)
                labels = Image.open(os.path.join(self.image_dir(name), f"k{r['k']}.labels.png"))
                self.assertEqual(labels.mode, "L")
                label_bytes = labels.tobytes()
                self.assertLess(max(label_bytes), len(palette))
                expected = bytes(c for lab in label_bytes for c in palette[lab])
                # Decoder 1: Pillow.
                pil = Image.open(png)
                self.assertEqual(pil.mode, "P")
                self.assertEqual(pil.convert("RGB").tobytes(), expected)
                # Decoder 2: libvips.
                w, h, rgb = kt.vips_decode_rgb(png, work)
                self.assertEqual((w, h), (width, height))
                self.assertEqual(rgb, expected)
                # Pixel counts per palette entry agree with the label map.
                counts = [0] * len(palette)
                for lab in label_bytes:
                    counts[lab] += 1
                self.assertEqual(counts, [p["pixels"] for p in r["palette"]])

    def test_mse_output_matches_written_image(self):
        # mse_output is the error between the written image and the input as
        # kmq read it (alpha flattened on white), recomputed here with Pillow.
        for name in ["china.jpg", "coffee.png"]:
            s = kt.load_json(os.path.join(self.image_dir(name), "summary.json"))
            src = Image.open(os.path.join(kt.PHOTOS, name)).convert("RGB").tobytes()
            r = s["results"][-1]
            out = Image.open(os.path.join(self.image_dir(name), f"k{r['k']}.png"))
            out = out.convert("RGB").tobytes()
            total = sum((a - b) ** 2 for a, b in zip(src, out))
            self.assertAlmostEqual(total / s["input"]["pixels"], r["mse_output"], places=6)

    def test_run_json_and_elbow_csv(self):
        run = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(run["status"], "complete")
        self.assertEqual(run["totals"]["images"], len(kt.BUNDLED))
        self.assertEqual(run["totals"]["ok"], len(kt.BUNDLED))
        self.assertEqual(run["totals"]["failed"], 0)
        with open(os.path.join(self.out, "elbow.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), len(kt.BUNDLED) * len(K_LIST))
        for row in rows:
            self.assertEqual(row["job"], "photos")
            s = kt.load_json(os.path.join(self.image_dir(row["image"]), "summary.json"))
            r = next(r for r in s["results"] if r["k"] == int(row["k"]))
            self.assertEqual(float(row["inertia"]), r["inertia"])
            self.assertEqual(float(row["mse"]), r["mse"])
            self.assertEqual(float(row["psnr_db"]), r["psnr_db"])
            self.assertEqual(int(row["iterations"]), r["iterations"])

    def test_rerun_skips_done_images(self):
        before = {n: os.path.getmtime(os.path.join(self.image_dir(n), "summary.json"))
                  for n in kt.BUNDLED}
        proc = kt.run("run", self.job, "--threads", "2", check_code=0)
        self.assertIn("4 already done", proc.stderr)
        after = {n: os.path.getmtime(os.path.join(self.image_dir(n), "summary.json"))
                 for n in kt.BUNDLED}
        self.assertEqual(before, after)


if __name__ == "__main__":
    unittest.main()
