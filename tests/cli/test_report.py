"""The report: a k-sweep over the bundled photos plus a broken file and a
hostile file name, then
  (a) OUT/index.html opened in headless Chromium (DevTools protocol over
      --remote-debugging-pipe, standard library only): every <img>, <object>
      and local <a href> resolves, a full-page screenshot is saved; the same
      checker run on a copy with one file removed must report it;
  (b) every *.svg under OUT parses as XML, and the per-image charts exist;
  (c) elbow.csv parses and agrees with the summaries;
  (d) `kmq report OUT` rewrites run.json, elbow.csv and index.html
      byte for byte, keeping the run's own facts;
plus the collection-level elbow in run.json, HTML escaping, and Kneedle on
images of m well-separated colour blobs (elbow.k == m).

The Chromium part is skipped, with a message, only when /usr/bin/chromium is
absent (scripts/setup.sh installs it)."""
import csv
import json
import math
import os
import re
import shutil
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

import browser
import kmqtest as kt

K_RANGE = list(range(2, 9))
HOSTILE_DIR = "we ird %#?\u00e9"
HOSTILE_NAME = "a b&<x>'\".jpg"


def url_to_path(url):
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.unquote(parsed.path), parsed.fragment


def check_page(html_path, screenshot=None, follow=True):
    """Opens html_path in headless Chromium (tests/cli/browser.py); returns a
    list of problems (one line each: an image that does not load and decode,
    lazy ones too; a local link whose target is missing; a non-local
    reference). With `follow`, every page it links in OUT is checked the
    same way. Saves a screenshot of the first screen when asked."""
    problems, seen, todo = [], set(), [os.path.abspath(html_path)]
    with browser.Browser() as b:
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            b.open("file://" + urllib.parse.quote(path), width=1280, height=900)
            if screenshot and path == os.path.abspath(html_path):
                b.screenshot(screenshot)
            for src in b.eval(browser.ALL_IMAGES_DECODE):
                problems.append(f"image does not load: {src}")
            facts = b.eval(browser.LINKS_AND_IMAGES)
            if not facts["images"] and path == os.path.abspath(html_path):
                problems.append("the page has no images at all")
            for link in facts["links"] + facts["images"]:
                if not link.startswith("file:"):
                    problems.append(f"non-local reference: {link}")
                    continue
                target, _fragment = url_to_path(link)
                if not os.path.isfile(target):
                    problems.append(f"link target missing: {link}")
                elif follow and target.endswith(".html"):
                    todo.append(target)
    return problems


# ---- fixtures ---------------------------------------------------------------

def blob_image(m, path, size=240, sigma=6.0, seed=0):
    """m horizontal bands, each one colour of the inset RGB cube's corners
    (well separated: 175 apart per channel) plus Gaussian noise."""
    corners = [(40, 40, 40), (215, 215, 215), (215, 40, 40), (40, 215, 40),
               (40, 40, 215), (215, 215, 40), (215, 40, 215), (40, 215, 215)]
    rng = np.random.default_rng(seed)
    band = (np.arange(size) * m) // size
    labels = np.repeat(band[:, None], size, axis=1)
    img = np.array(corners[:m], dtype=float)[labels] + rng.normal(0, sigma, (size, size, 3))
    Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB").save(path)


class Report(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("report")
        cls.out = os.path.join(cls.dir, "out")
        inputs = os.path.join(cls.dir, "in")
        os.makedirs(os.path.join(inputs, HOSTILE_DIR))
        for name in kt.BUNDLED:
            shutil.copy(os.path.join(kt.PHOTOS, name), inputs)
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"),
                    os.path.join(inputs, HOSTILE_DIR, HOSTILE_NAME))
        with open(os.path.join(kt.PHOTOS, "china.jpg"), "rb") as f:
            head = f.read(6000)
        with open(os.path.join(inputs, "broken.jpg"), "wb") as f:
            f.write(head)  # truncated JPEG: decode_failed
        cls.job = kt.write_job(os.path.join(cls.dir, "job.ini"), f"""
[run]
output = out
seed = 7
[defaults]
k = {K_RANGE[0]}-{K_RANGE[-1]}
restarts = 2
[job photos]
input = in
recursive = true
report = full
[job single]
input = in/china.jpg
""")
        kt.run("run", cls.job, "--threads", "2", check_code=1)
        cls.before = {}
        for name in ("run.json", "elbow.csv", "index.html", "report.css",
                     "photos/china.jpg/index.html", "single/china.jpg/index.html"):
            with open(os.path.join(cls.out, name), "rb") as f:
                cls.before[name] = f.read()
        cls.run_doc = kt.load_json(os.path.join(cls.out, "run.json"))
        cls.summaries = {}
        for im in cls.run_doc["images"]:
            cls.summaries[im["dir"]] = kt.load_json(
                os.path.join(cls.out, im["dir"], "summary.json"))

    # (a) ---------------------------------------------------------------
    def test_a_index_loads_in_chromium(self):
        if not browser.available():
            self.skipTest("chromium is absent (install Debian's chromium package, as "
                          "scripts/setup.sh does); the browser check did not run")
        index = os.path.join(self.out, "index.html")
        shot = os.path.join(self.dir, "report.png")
        problems = check_page(index, screenshot=shot)
        self.assertEqual(problems, [])
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        with Image.open(shot) as im:
            self.assertEqual(im.size, (1280, 900))

        # The checker must be able to fail: break references in a copy.
        broken = os.path.join(self.dir, "broken-copy")
        shutil.rmtree(broken, ignore_errors=True)
        shutil.copytree(self.out, broken)
        hostile = next(d for d in self.summaries if "we ird" in d)  # "%" is "%25" on disk
        os.remove(os.path.join(broken, hostile, "k3.png"))
        os.remove(os.path.join(broken, "photos", "china.jpg", "elbow.svg"))
        os.remove(os.path.join(broken, "single", "china.jpg", "thumb.jpg"))
        os.remove(os.path.join(broken, "photos", "coffee.png", "summary.json"))
        problems = check_page(os.path.join(broken, "index.html"))
        text = "\n".join(problems)
        self.assertIn("image does not load", text)
        self.assertIn(urllib.parse.quote(f"{hostile}/k3.png"), text)
        self.assertIn("china.jpg/elbow.svg", text)
        self.assertIn("single/china.jpg/thumb.jpg", text)
        self.assertIn("link target missing", text)
        self.assertIn("coffee.png/summary.json", text)

    # (b) ---------------------------------------------------------------
    def test_b_every_svg_parses_and_charts_exist(self):
        svgs = []
        for root, _dirs, files in os.walk(self.out):
            svgs += [os.path.join(root, f) for f in files if f.endswith(".svg")]
        self.assertGreater(len(svgs), 0)
        for path in svgs:
            root = ET.parse(path).getroot()
            self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg", path)
        for d, s in self.summaries.items():
            folder = os.path.join(self.out, d)
            if s["status"] != "ok":
                self.assertFalse(os.path.exists(os.path.join(folder, "elbow.svg")))
                continue
            files = set(os.listdir(folder))
            # thumb.jpg under light and full: longest side within 200.
            w, h = s["input"]["width"], s["input"]["height"]
            f = -(-max(w, h) // 200)
            with Image.open(os.path.join(folder, "thumb.jpg")) as im:
                self.assertEqual(im.size, (-(-w // f), -(-h // f)))
            if s["config"]["job"] == "single":  # report = light: no chart file
                self.assertEqual(s["config"].get("report"), None)
                self.assertEqual([f for f in files if f.endswith((".svg", ".jpg"))],
                                 ["thumb.jpg"], d)
                continue
            self.assertEqual(s["config"]["report"], "full")
            self.assertTrue({"preview.jpg", "elbow.svg", "restarts.svg"} <= files, d)
            # Block means of f x f pixels, f the smallest integer factor
            # that brings the longest side within 512.
            w, h = s["input"]["width"], s["input"]["height"]
            f = -(-max(w, h) // 512)
            with Image.open(os.path.join(folder, "preview.jpg")) as im:
                self.assertEqual(im.size, (-(-w // f), -(-h // f)))
            for r in s["results"]:
                self.assertIn(f"k{r['k']}.palette.svg", files)
            colours = sorted(f for f in files if f.endswith(".colors.svg"))
            featured = s["elbow"]["k"] if s["elbow"]["k"] is not None else K_RANGE[3]
            self.assertEqual(colours, [f"k{featured}.colors.svg"], d)
            with open(os.path.join(folder, "elbow.svg"), encoding="utf-8") as f:
                svg = f.read()
            self.assertIn("k (number of colours)", svg)
            self.assertIn("PSNR of the written image (dB)", svg)
            self.assertEqual("elbow-marker" in svg, s["elbow"]["k"] is not None)
            if s["elbow"]["k"] is not None:
                self.assertIn(f"elbow: k = {s['elbow']['k']}", svg)
            with open(os.path.join(folder, "restarts.svg"), encoding="utf-8") as f:
                svg = f.read()
            self.assertEqual(svg.count('class="best"'), len(s["results"]))

    # (c) ---------------------------------------------------------------
    def test_c_elbow_csv_agrees_with_summaries(self):
        with open(os.path.join(self.out, "elbow.csv"), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        expected = []
        for im in self.run_doc["images"]:
            s = self.summaries[im["dir"]]
            if s["status"] != "ok":
                continue
            for r in s["results"]:
                expected.append((s["config"]["job"], s["input"]["rel"], r, s["seconds"]["total"]))
        self.assertEqual(len(rows), len(expected))
        for row, (job, rel, r, image_seconds) in zip(rows, expected):
            self.assertEqual(row["job"], job)
            self.assertEqual(row["image"], rel)
            self.assertEqual(int(row["k"]), r["k"])
            self.assertEqual(float(row["inertia"]), r["inertia"])
            self.assertEqual(float(row["mse"]), r["mse"])
            if r["psnr_db"] is None:
                self.assertEqual(row["psnr_db"], "")
            else:
                self.assertEqual(float(row["psnr_db"]), r["psnr_db"])
            self.assertEqual(int(row["iterations"]), r["iterations"])
            self.assertEqual(float(row["seconds"]), r["seconds"]["fit"] + r["seconds"]["map"])
            self.assertEqual(int(row["k_effective"]), r["k_effective"])
            self.assertEqual(float(row["mse_output"]), r["mse_output"])
            self.assertEqual(int(row["png_bytes"]), r["compression"]["png_bytes"])
            self.assertEqual(float(row["ratio_vs_input"]), r["compression"]["ratio_vs_input"])
            self.assertEqual(float(row["image_seconds"]), image_seconds)
        self.assertTrue(any(HOSTILE_NAME in row["image"] for row in rows))

    # (d) ---------------------------------------------------------------
    def test_d_report_rebuild_is_byte_identical(self):
        copy = os.path.join(self.dir, "rebuild")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.out, copy)
        kt.run("report", copy, check_code=0)
        for name, data in self.before.items():
            with open(os.path.join(copy, name), "rb") as f:
                self.assertEqual(f.read(), data, f"{name} changed when rebuilt")
        # Without a run.json the run's facts are unknown, the rest the same.
        os.remove(os.path.join(copy, "run.json"))
        kt.run("report", copy, check_code=0)
        doc = kt.load_json(os.path.join(copy, "run.json"))
        self.assertEqual(doc["threads"], 0)
        self.assertIsNone(doc["started_utc"])
        self.assertEqual(doc["status"], "failures")
        self.assertEqual(kt.strip_timings(doc), kt.strip_timings(self.run_doc) | {
            "job_file": None})

    # run.json ---------------------------------------------------------------
    def test_collection_elbow_in_run_json(self):
        jobs = {j["name"]: j for j in self.run_doc["jobs"]}
        photos, single = jobs["photos"]["elbow"], jobs["single"]["elbow"]
        self.assertEqual(photos["method"], "kneedle-mean-normalised")
        self.assertEqual(photos["images"], 5)  # the broken file does not count
        self.assertEqual(photos["k_values"], len(K_RANGE))
        self.assertIn(photos["k"], K_RANGE)
        # One image: its normalised curve is the mean, and Kneedle does not
        # depend on scale, so the job's elbow is the image's.
        china = self.summaries["single/china.jpg"]
        self.assertEqual(single["images"], 1)
        self.assertEqual(single["k"], china["elbow"]["k"])
        self.assertIsNotNone(single["k"])

    def test_html_summary_failures_and_escaping(self):
        html = self.before["index.html"].decode("utf-8")
        self.assertNotIn("<x>", html)
        # In the table's data, the name is a JSON string with < > & escaped.
        self.assertIn('a b\\u0026\\u003cx\\u003e\'\\".jpg', html)
        static = html.split("<script")[0]  # the script builds its links from the data
        self.assertNotRegex(static, r"(src|href)=\"[^#\"][^\"]*[ #?'<>&]")
        self.assertIn("decode_failed", html)
        self.assertIn("broken.jpg", html)
        self.assertIn("Failures (1)</h2>", html)
        self.assertNotRegex(html, r"(src|href)=\"(https?:|//|/)")
        self.assertEqual(html.count("<script"), 2)  # the table's data and its script
        self.assertIn("<noscript>", html)
        rows = json.loads(re.search(r'<script type="application/json" id="kmq-rows">(.*?)'
                                    r"</script>", html, re.S).group(1))
        self.assertEqual([r[1] for r in rows], [im["rel"] for im in self.run_doc["images"]])
        self.assertEqual([r[12] for r in rows], [im["status"] for im in self.run_doc["images"]])
        # Each image's page escapes the name in HTML.
        hostile = next(d for d in self.summaries if "we ird" in d)
        with open(os.path.join(self.out, hostile, "index.html"), encoding="utf-8") as f:
            page = f.read()
        self.assertIn("a b&amp;&lt;x&gt;&#39;&quot;.jpg", page)
        self.assertNotIn("<x>", page)
        self.assertIn('href="../../../report.css"', page)
        # A failed image's folder holds its summary alone: no page.
        self.assertEqual(os.listdir(os.path.join(self.out, "photos", "broken.jpg")),
                         ["summary.json"])

    # Kneedle on known structure ------------------------------------------------
    def test_blob_images_elbow_is_m(self):
        work = kt.fresh_dir("report_blobs")
        for m in (3, 5, 8):
            path = os.path.join(work, f"blobs{m}.png")
            blob_image(m, path)
            out = os.path.join(work, f"out{m}")
            kt.run("quantize", path, "-k", "2-16", "--restarts", "3", "-o", out,
                   "--quiet", check_code=0)
            s = kt.load_json(os.path.join(out, f"blobs{m}.png", "summary.json"))
            self.assertEqual(s["elbow"]["method"], "kneedle")
            self.assertEqual(s["elbow"]["k"], m, [r["inertia"] for r in s["results"]])


class RefusedSummary(unittest.TestCase):
    """A summary.json that kmq's reader refuses (here results[0].k = 2^53 + 1,
    which once made the report dereference NULL: alone in its job, the
    image's k values are the job's common ones, and 2^53 + 1 does not survive
    the trip through a double) is named on stderr with its field; `kmq
    report` leaves it out and exits 1, a later `kmq run` redoes the image
    and exits 0, and both write run.json."""

    CRAFTED_K = 2**53 + 1

    def setUp(self):
        self.dir = kt.fresh_dir("report_refused")
        inputs = os.path.join(self.dir, "in")
        os.makedirs(inputs)
        for name in ("coffee.png", "astronaut.png"):
            shutil.copy(os.path.join(kt.PHOTOS, name), inputs)
        self.job = kt.write_job(os.path.join(self.dir, "job.ini"), """
[run]
output = out
[defaults]
k = 2, 4, 8
restarts = 2
[job photos]
input = in/coffee.png
[job other]
input = in/astronaut.png
""")
        self.out = os.path.join(self.dir, "out")
        kt.run("run", self.job, "--threads", "2", "--quiet", check_code=0)
        self.crafted = os.path.join(self.out, "photos", "coffee.png", "summary.json")
        doc = kt.load_json(self.crafted)
        doc["results"][0]["k"] = self.CRAFTED_K  # the config hash still matches
        with open(self.crafted, "w") as f:
            json.dump(doc, f, indent=2)
        for name in ("run.json", "elbow.csv", "index.html"):
            os.remove(os.path.join(self.out, name))

    def assert_clean_exit(self, proc, codes):
        # A negative code is a signal (the old report died of SIGSEGV).
        self.assertGreaterEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(proc.returncode, codes, proc.stderr)

    def assert_names_crafted(self, stderr):
        self.assertIn(self.crafted, stderr)
        self.assertIn(f"results[0].k = {self.CRAFTED_K} is outside 1..256", stderr)

    def test_report_then_run(self):
        proc = kt.run("report", self.out)
        self.assert_clean_exit(proc, (1,))
        self.assert_names_crafted(proc.stderr)
        self.assertIn("left out of the report", proc.stderr)
        doc = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(doc["status"], "failures")
        self.assertEqual([im["rel"] for im in doc["images"]], ["astronaut.png"])
        for name in ("elbow.csv", "index.html"):
            self.assertTrue(os.path.exists(os.path.join(self.out, name)), name)

        # The next run does not trust it: it redoes the image and says why.
        os.remove(os.path.join(self.out, "run.json"))
        proc = kt.run("run", self.job, "--threads", "2")
        self.assert_clean_exit(proc, (0,))
        self.assert_names_crafted(proc.stderr)
        self.assertIn("the image is processed again", proc.stderr)
        self.assertIn("1 done, 1 already done, 0 failed", proc.stderr)
        doc = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(doc["status"], "complete")
        self.assertEqual(sorted(im["rel"] for im in doc["images"]),
                         ["astronaut.png", "coffee.png"])
        self.assertEqual(kt.load_json(self.crafted)["results"][0]["k"], 2)
        kt.run("report", self.out, check_code=0)

    def test_every_summary_refused(self):
        os.remove(os.path.join(self.out, "other", "astronaut.png", "summary.json"))
        proc = kt.run("report", self.out)
        self.assert_clean_exit(proc, (1,))
        self.assert_names_crafted(proc.stderr)
        doc = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(doc["totals"]["images"], 0)
        self.assertEqual(doc["status"], "failures")

    def test_run_json_that_lies(self):
        os.remove(self.crafted)
        run_json = os.path.join(self.out, "run.json")
        with open(run_json, "w") as f:
            json.dump({"schema": 1, "status": "complete", "job_file": None,
                       "threads": -1, "started_utc": None, "seconds": {"wall": 1.0}}, f)
        proc = kt.run("report", self.out)
        self.assert_clean_exit(proc, (0,))
        self.assertIn(run_json, proc.stderr)
        self.assertIn("threads = -1 is outside", proc.stderr)
        self.assertEqual(kt.load_json(run_json)["threads"], 0)


if __name__ == "__main__":
    unittest.main()
