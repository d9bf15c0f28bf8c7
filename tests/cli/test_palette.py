"""Palettes not fitted per image (docs/design.md, "Shared and given
palettes"): palette_file maps every image to a given palette (kmq .json,
GIMP .gpl, indexed PNG); palette = shared fits one palette per k on the
union histogram of a job's images. Checked against numpy brute force over
every pixel."""
import filecmp
import json
import os
import shutil
import subprocess
import unittest

import numpy as np
from PIL import Image

import kmqtest as kt

PLAIN = ["astronaut.png", "china.jpg", "coffee.png"]  # no alpha
PIXELS = {}


def pixels(name, workdir):
    """The RGB pixels kmq sees of a bundled photo (libvips' decode; alpha
    flattened onto white as kmq does), (N, 3) float64."""
    if name not in PIXELS:
        src = os.path.join(kt.PHOTOS, name)
        if name == "chelsea_alpha.png":
            flat = os.path.join(workdir, "flat.v")
            subprocess.run(["vips", "flatten", src, flat, "--background", "255 255 255"],
                           check=True, capture_output=True)
            src = flat
        w, h, data = kt.vips_decode_rgb(src, workdir)
        PIXELS[name] = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.float64)
    return PIXELS[name]


def nearest(px, centres):
    """Index of the nearest centre of each pixel (lowest index on a tie, as
    numpy's argmin), and the squared distance to it."""
    d = ((px[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    lab = d.argmin(axis=1)
    return lab, d[np.arange(len(px)), lab]


def labels_of(path):
    return np.asarray(Image.open(path)).reshape(-1)


def tree(root, skip=("run.json", "index.html", "elbow.csv", ".kmq.lock")):
    out = {}
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if x != ".kmq-shards"]  # the shards' own records
        for n in names:
            if n in skip:
                continue
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = p
    return out


def same_summary(a, b):
    return kt.strip_timings(kt.load_json(a)) == kt.strip_timings(kt.load_json(b))


class GivenPalette(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("palette-given")
        rng = np.random.default_rng(5)
        cols = rng.integers(0, 256, size=(11, 3))
        cols = np.vstack([cols, cols[3]])  # a duplicate entry: the tie goes to index 3
        cls.cols = cols
        gpl = ["GIMP Palette", "Name: test", "Columns: 4", "# a comment", ""]
        gpl += [f"{r} {g} {b}\tcolour {i}" for i, (r, g, b) in enumerate(cols)]
        cls.gpl = os.path.join(cls.dir, "p.gpl")
        with open(cls.gpl, "w") as f:
            f.write("\n".join(gpl) + "\n")
        cls.png = os.path.join(cls.dir, "p.png")
        img = Image.new("P", (4, 3))
        img.putpalette([int(v) for v in cols.reshape(-1)])
        img.save(cls.png)
        # A kmq palette with unrounded centres: the map uses the centres.
        cls.centres = cols[:8] + rng.uniform(-0.49, 0.49, size=(8, 3)).clip(-cols[:8],
                                                                            255 - cols[:8])
        doc = {"schema": 1, "palette": [
            {"rgb": [int(round(v)) for v in c], "centre": list(map(float, c))}
            for c in cls.centres]}
        cls.json = os.path.join(cls.dir, "k8.palette.json")
        with open(cls.json, "w") as f:
            json.dump(doc, f)

    def check(self, palette, centres, flag):
        outs = []
        for threads in ("1", "2", "3"):
            out = os.path.join(self.dir, f"out-{os.path.basename(palette)}-{threads}")
            for name in ("china.jpg", "coffee.png"):
                kt.run("quantize", os.path.join(kt.PHOTOS, name), flag, palette,
                       "--save", "indexed, labels", "--threads", threads, "-o", out, "-q",
                       check_code=0)
            outs.append(out)
        n = len(centres)
        for name in ("china.jpg", "coffee.png"):
            folder = os.path.join(outs[0], name)
            s = kt.load_json(os.path.join(folder, "summary.json"))
            self.assertEqual(s["palette"]["mode"], "file")
            self.assertEqual(s["config"]["k"], [n])
            px = pixels(name, self.dir)
            ref_lab, ref_d = nearest(px, centres)
            lab = labels_of(os.path.join(folder, f"k{n}.labels.png"))
            np.testing.assert_array_equal(lab, ref_lab)
            self.assertEqual(kt.png_palette(os.path.join(folder, f"k{n}.png")),
                             [tuple(int(round(v)) for v in c) for c in centres])
            r = s["results"][0]
            self.assertAlmostEqual(r["inertia"] / ref_d.sum(), 1.0, places=12)
            indexed = np.asarray(Image.open(os.path.join(folder, f"k{n}.png"))).reshape(-1)
            np.testing.assert_array_equal(indexed, ref_lab)
        # Deterministic at 1, 2 and 3 threads.
        a = tree(outs[0])
        for other in outs[1:]:
            b = tree(other)
            self.assertEqual(sorted(a), sorted(b))
            for rel in a:
                if rel.endswith("summary.json"):
                    self.assertTrue(same_summary(a[rel], b[rel]), rel)
                else:
                    self.assertTrue(filecmp.cmp(a[rel], b[rel], shallow=False), rel)

    def test_gpl(self):
        self.check(self.gpl, self.cols.astype(np.float64), "--palette-file")

    def test_indexed_png(self):
        self.check(self.png, self.cols.astype(np.float64), "--palette")

    def test_kmq_json(self):
        self.check(self.json, self.centres, "--palette-file")

    def test_job_file_key_and_hash(self):
        d = os.path.join(self.dir, "job")
        os.makedirs(d, exist_ok=True)
        shutil.copy(self.gpl, os.path.join(d, "brand.gpl"))
        job = kt.write_job(os.path.join(d, "job.ini"), f"""
[run]
output = out
[defaults]
k = 4
[job a]
input = {kt.PHOTOS}/coffee.png
palette_file = brand.gpl
""")
        kt.run("run", job, "-q", check_code=0)
        s1 = kt.load_json(os.path.join(d, "out", "a", "coffee.png", "summary.json"))
        self.assertEqual(s1["config"]["k"], [len(self.cols)])  # the palette's size, not k
        # Another palette: another config hash, so resume redoes the image.
        with open(os.path.join(d, "brand.gpl"), "a") as f:
            f.write("1 2 3\n")
        kt.run("run", job, "-q", check_code=0)
        s2 = kt.load_json(os.path.join(d, "out", "a", "coffee.png", "summary.json"))
        self.assertNotEqual(s1["config"]["hash"], s2["config"]["hash"])
        self.assertNotEqual(s1["palette"]["hash"], s2["palette"]["hash"])
        self.assertEqual(s2["config"]["k"], [len(self.cols) + 1])

    def test_bad_palette_files(self):
        img = os.path.join(kt.PHOTOS, "coffee.png")
        cases = {
            "bad.gpl": ("GIMP Palette\nName: x\n10 20\n", "bad.gpl:3:"),
            "range.gpl": ("GIMP Palette\n1 2 3\n1 2 300\n", "range.gpl:3:"),
            "nohead.gpl": ("1 2 3\n", "not a palette kmq reads"),
            "empty.gpl": ("GIMP Palette\n# nothing\n", "no colour"),
            "nopal.json": ('{"schema": 1}', "\"palette\""),
            "broken.json": ('{"palette": [', "not valid JSON"),
        }
        for name, (text, needle) in cases.items():
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(text)
            with self.subTest(file=name):
                p = kt.run("quantize", img, "--palette-file", path, "-o",
                           os.path.join(self.dir, "bad-out"), check_code=2)
                self.assertIn(needle, p.stderr)
                self.assertIn(name, p.stderr)
        many = os.path.join(self.dir, "many.gpl")
        with open(many, "w") as f:
            f.write("GIMP Palette\n" + "".join(f"{i % 256} 0 0\n" for i in range(257)))
        p = kt.run("quantize", img, "--palette-file", many, check_code=2)
        self.assertIn("many.gpl:258:", p.stderr)
        with open(self.png, "rb") as f:
            data = f.read()
        for cut in (8, 20, 40):  # cut inside IHDR, after it, inside PLTE
            trunc = os.path.join(self.dir, f"trunc{cut}.png")
            with open(trunc, "wb") as f:
                f.write(data[:cut])
            with self.subTest(cut=cut):
                p = kt.run("quantize", img, "--palette-file", trunc, check_code=2)
                self.assertIn(f"trunc{cut}.png", p.stderr)
        rgb = os.path.join(self.dir, "rgb.png")
        Image.new("RGB", (2, 2)).save(rgb)
        p = kt.run("quantize", img, "--palette-file", rgb, check_code=2)
        self.assertIn("not indexed", p.stderr)
        p = kt.run("quantize", img, "--palette-file", os.path.join(self.dir, "none.gpl"),
                   check_code=2)
        self.assertIn("none.gpl", p.stderr)
        p = kt.run("quantize", img, "--palette", "sharde", check_code=2)
        self.assertIn("per_image, shared or a palette file", p.stderr)
        p = kt.run("quantize", img, "-k", "4", "--palette-file", self.gpl, check_code=2)
        self.assertIn("exclude", p.stderr)
        # In a job file: the palette file's own line, and the clash of keys.
        job = kt.write_job(os.path.join(self.dir, "bad.ini"), f"""
[run]
output = out
[job a]
input = {img}
palette_file = bad.gpl
""")
        p = kt.run("validate", job, check_code=2)
        self.assertIn("bad.gpl:3:", p.stderr)
        job = kt.write_job(os.path.join(self.dir, "clash.ini"), f"""
[run]
output = out
[job a]
input = {img}
palette = shared
palette_file = {self.gpl}
""")
        p = kt.run("validate", job, check_code=2)
        self.assertIn("exclude each other", p.stderr)


def shared_job(path, inputs, out="out", k="16", restarts=2, tol="1e-4"):
    return kt.write_job(path, f"""
[run]
output = {out}
seed = 3
[defaults]
k = {k}
restarts = {restarts}
tol = {tol}
max_iter = 1000
save = indexed, labels
palette = shared
[job set]
input = {inputs}
""")


class SharedPalette(unittest.TestCase):
    def test_bundled_photos_k16(self):
        d = kt.fresh_dir("palette-shared")
        # tol = 0: Lloyd runs until the assignment no longer changes, so
        # the written centres are an exact fixed point.
        job = shared_job(os.path.join(d, "job.ini"), kt.PHOTOS, tol="0")
        kt.run("run", job, "-q", check_code=0)
        out = os.path.join(d, "out", "set")
        with open(os.path.join(out, "_palette", "k16.palette.json")) as f:
            pal = json.load(f)
        centres = np.array([e["centre"] for e in pal["palette"]])
        self.assertEqual(len(centres), 16)
        self.assertTrue(os.path.exists(os.path.join(out, "_palette", "k16.gpl")))
        self.assertTrue(os.path.exists(os.path.join(out, "_palette", "k16.palette.png")))
        self.assertEqual(sorted(i["rel"] for i in pal["images"]), sorted(kt.BUNDLED))
        plte = None
        allpx, alllab = [], []
        for name in kt.BUNDLED:
            folder = os.path.join(out, name)
            s = kt.load_json(os.path.join(folder, "summary.json"))
            self.assertEqual(s["palette"], {"mode": "shared", "hash": pal["hash"]})
            chunks = dict(kt.png_chunks(os.path.join(folder, "k16.png")))
            if plte is None:
                plte = chunks["PLTE"]
            self.assertEqual(chunks["PLTE"], plte, name)  # byte-identical PLTE
            lab = labels_of(os.path.join(folder, "k16.labels.png"))
            decoded = np.asarray(Image.open(os.path.join(folder, "k16.png")).convert("RGB"))
            table = np.frombuffer(plte, np.uint8).reshape(-1, 3)
            np.testing.assert_array_equal(decoded.reshape(-1, 3), table[lab])
            px = pixels(name, d)
            ref_lab, ref_d = nearest(px, centres)
            np.testing.assert_array_equal(lab, ref_lab)
            # Its own error against the shared palette.
            self.assertAlmostEqual(s["results"][0]["inertia"] / ref_d.sum(), 1.0, places=12)
            allpx.append(px)
            alllab.append(ref_lab)
        # The report shows the shared palette once for the job.
        with open(os.path.join(d, "out", "index.html")) as f:
            html = f.read()
        self.assertEqual(html.count('src="set/_palette/k16.palette.png"'), 1)
        px = np.vstack(allpx)
        lab = np.concatenate(alllab)
        # The shared fit's inertia over the union = the per-pixel sum over
        # every image's pixels, and the centres are a Lloyd fixed point of
        # all pixels together (each centre the mean of its pixels).
        ref = ((px - centres[lab]) ** 2).sum()
        self.assertEqual(pal["pixels"], len(px))
        self.assertAlmostEqual(pal["inertia"] / ref, 1.0, places=9)
        self.assertTrue(pal["converged"])
        for j in range(len(centres)):
            members = px[lab == j]
            self.assertEqual(pal["palette"][j]["weight"], len(members))
            np.testing.assert_allclose(members.mean(axis=0), centres[j], rtol=1e-9, atol=1e-9)

    def test_adding_an_image_refits(self):
        d = kt.fresh_dir("palette-add")
        src = os.path.join(d, "in")
        os.makedirs(src)
        for name in ("china.jpg", "coffee.png"):
            shutil.copy(os.path.join(kt.PHOTOS, name), src)
        job = shared_job(os.path.join(d, "job.ini"), src, k="4", restarts=1)
        kt.run("run", job, "-q", check_code=0)
        summary = os.path.join(d, "out", "set", "china.jpg", "summary.json")
        before = kt.load_json(summary)
        kt.run("run", job, "-q", check_code=0)  # nothing changed: the same palette
        self.assertEqual(kt.load_json(summary)["config"]["hash"], before["config"]["hash"])
        shutil.copy(os.path.join(kt.PHOTOS, "astronaut.png"), src)
        kt.run("run", job, "-q", check_code=0)
        after = kt.load_json(summary)
        self.assertNotEqual(after["palette"]["hash"], before["palette"]["hash"])
        self.assertNotEqual(after["config"]["hash"], before["config"]["hash"])
        with open(os.path.join(d, "out", "set", "_palette", "k4.palette.json")) as f:
            pal = json.load(f)
        self.assertEqual(pal["hash"], after["palette"]["hash"])
        self.assertEqual(len(pal["images"]), 3)
        # The new palette names the one it replaced, and the report says so.
        self.assertEqual(pal["replaces"], {"hash": before["palette"]["hash"], "images": 2})
        with open(os.path.join(d, "out", "index.html")) as f:
            html = f.read()
        self.assertIn("fitted once on the union of 3 images; <b>refitted</b>", html)
        self.assertIn(f"<code>{before['palette']['hash']}</code> of 2 images", html)
        # A run with nothing changed keeps the palette and its record.
        kt.run("run", job, "-q", check_code=0)
        with open(os.path.join(d, "out", "set", "_palette", "k4.palette.json")) as f:
            self.assertEqual(json.load(f), pal)

    def test_report_shows_shared_beside_own_error(self):
        d = kt.fresh_dir("palette-beside")
        job = kt.write_job(os.path.join(d, "job.ini"), f"""
[run]
output = out
seed = 3
[defaults]
k = 4, 8
restarts = 1
[job own]
input = {kt.PHOTOS}
[job shared]
input = {kt.PHOTOS}
palette = shared
""")
        kt.run("run", job, "-q", check_code=0)
        with open(os.path.join(d, "out", "index.html")) as f:
            html = f.read()
        for k in (4, 8):
            shared, own = [], []
            for name in kt.BUNDLED:
                s = kt.load_json(os.path.join(d, "out", "shared", name, "summary.json"))
                o = kt.load_json(os.path.join(d, "out", "own", name, "summary.json"))
                rs = next(r for r in s["results"] if r["k"] == k)
                ro = next(r for r in o["results"] if r["k"] == k)
                shared.append(rs["psnr_db"])
                own.append(ro["psnr_db"])
                # Each shared image's page shows its own palette's PSNR.
                with open(os.path.join(d, "out", "shared", name, "index.html")) as f:
                    page = f.read()
                self.assertIn(f"own palette {ro['psnr_db']:.2f} dB", page)
            n = len(kt.BUNDLED)
            self.assertIn(f"k = {k}, mean PSNR over the {n} images also fitted on their own "
                          f"palette: shared {np.mean(shared):.2f} dB, own {np.mean(own):.2f} dB",
                          html)

    def test_cluster_recipe_shards_match_one_process(self):
        d = kt.fresh_dir("palette-shards")
        one = shared_job(os.path.join(d, "one.ini"), kt.PHOTOS, out="one", k="4, 8")
        two = shared_job(os.path.join(d, "two.ini"), kt.PHOTOS, out="two", k="4, 8")
        kt.run("run", one, "-q", check_code=0)
        # A shard never fits: without `kmq palette` first it says so.
        p = kt.run("run", two, "--shard", "0/2", "-q", check_code=2)
        self.assertIn("kmq palette", p.stderr)
        kt.run("palette", two, "-q", check_code=0)
        stamp = os.stat(os.path.join(d, "two", "set", "_palette", "k8.palette.json")).st_mtime_ns
        kt.run("run", two, "--shard", "0/2", "-q", check_code=0)
        kt.run("run", two, "--shard", "1/2", "-q", check_code=0)
        kt.run("report", os.path.join(d, "two"), check_code=0)
        # The shards read the palette; none wrote it again.
        self.assertEqual(
            os.stat(os.path.join(d, "two", "set", "_palette", "k8.palette.json")).st_mtime_ns,
            stamp)
        a, b = tree(os.path.join(d, "one")), tree(os.path.join(d, "two"))
        self.assertEqual(sorted(a), sorted(b))
        for rel in a:
            if rel.endswith("summary.json"):
                sa, sb = kt.load_json(a[rel]), kt.load_json(b[rel])
                for s in (sa, sb):
                    s["input"].pop("path")
                self.assertEqual(kt.strip_timings(sa), kt.strip_timings(sb), rel)
            else:
                self.assertTrue(filecmp.cmp(a[rel], b[rel], shallow=False), rel)


if __name__ == "__main__":
    unittest.main()
