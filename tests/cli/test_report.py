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
import base64
import csv
import fcntl
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

import kmqtest as kt

CHROMIUM = "/usr/bin/chromium"
K_RANGE = list(range(2, 9))
HOSTILE_DIR = "we ird %#?\u00e9"
HOSTILE_NAME = "a b&<x>'\".jpg"


# ---- a minimal DevTools-protocol client over a pipe ------------------------

class Browser:
    """Headless Chromium driven through --remote-debugging-pipe: commands
    are NUL-terminated JSON written to the browser's fd 3, replies and events
    come back on its fd 4."""

    def __init__(self, workdir):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        cmd_r, self.cmd_w = os.pipe()
        self.out_r, out_w = os.pipe()

        def child_fds():
            # Move both ends out of the way first, then onto 3 and 4.
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_fds, close_fds=False)
        os.close(cmd_r)
        os.close(out_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self.out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, session, timeout=120):
        deadline = time.monotonic() + timeout
        for i, ev in enumerate(self.events):
            if ev.get("method") == method and ev.get("sessionId") == session:
                del self.events[i]
                return ev
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method and ev.get("sessionId") == session:
                return ev
            self.events.append(ev)

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.cmd_w)
        os.close(self.out_r)
        shutil.rmtree(self.profile, ignore_errors=True)


PAGE_PROBE = """(() => {
  const abs = (u) => new URL(u, document.baseURI).href;
  return JSON.stringify({
    images: [...document.images].map(i => ({src: abs(i.getAttribute('src')),
                                             ok: i.complete && i.naturalWidth > 0})),
    objects: [...document.querySelectorAll('object[data]')].map(o => abs(o.getAttribute('data'))),
    links: [...document.querySelectorAll('a[href]')].map(a => abs(a.getAttribute('href'))),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    height: document.documentElement.scrollHeight,
  });
})()"""


def url_to_path(url):
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.unquote(parsed.path), parsed.fragment


def check_page(html_path, screenshot=None, shot_height=None):
    """Opens html_path in headless Chromium; returns a list of problems (one
    line each: broken image, missing link target, failed request). Saves a
    PNG screenshot when asked (full page, or the top shot_height pixels)."""
    problems = []
    browser = Browser(os.path.dirname(screenshot or html_path))
    try:
        targets = browser.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = browser.send("Target.attachToTarget",
                               {"targetId": page["targetId"], "flatten": True})["sessionId"]
        browser.send("Page.enable", session=session)
        browser.send("Network.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                     session=session)
        url = "file://" + urllib.parse.quote(os.path.abspath(html_path))
        nav = browser.send("Page.navigate", {"url": url}, session=session)
        if nav.get("errorText"):
            return [f"navigation failed: {nav['errorText']}"]
        browser.wait_event("Page.loadEventFired", session)
        result = browser.send("Runtime.evaluate",
                              {"expression": PAGE_PROBE, "returnByValue": True},
                              session=session)
        facts = json.loads(result["result"]["value"])
        for ev in browser.events:
            if ev.get("method") == "Network.loadingFailed" and ev.get("sessionId") == session:
                problems.append(f"request failed: {ev['params'].get('errorText')}")
        for img in facts["images"]:
            if not img["ok"]:
                problems.append(f"image does not load: {img['src']}")
        ids = set(facts["ids"])
        for link in facts["links"] + facts["objects"]:
            if not link.startswith("file:"):
                problems.append(f"non-local reference: {link}")
                continue
            path, fragment = url_to_path(link)
            if not os.path.isfile(path):
                problems.append(f"link target missing: {link}")
            elif fragment and os.path.samefile(path, html_path) and fragment not in ids:
                problems.append(f"anchor missing: {link}")
        if not facts["images"]:
            problems.append("the page has no images at all")
        if screenshot:
            height = facts["height"] if shot_height is None else min(shot_height,
                                                                     facts["height"])
            shot = browser.send("Page.captureScreenshot",
                                {"format": "png", "captureBeyondViewport": True,
                                 "clip": {"x": 0, "y": 0, "width": 1280,
                                          "height": min(height, 16000), "scale": 1}},
                                session=session, timeout=120)
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
    finally:
        browser.close()
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
[job single]
input = in/china.jpg
""")
        kt.run("run", cls.job, "--threads", "2", check_code=1)
        cls.before = {}
        for name in ("run.json", "elbow.csv", "index.html"):
            with open(os.path.join(cls.out, name), "rb") as f:
                cls.before[name] = f.read()
        cls.run_doc = json.loads(cls.before["run.json"])
        cls.summaries = {}
        for im in cls.run_doc["images"]:
            cls.summaries[im["dir"]] = kt.load_json(
                os.path.join(cls.out, im["dir"], "summary.json"))

    # (a) ---------------------------------------------------------------
    def test_a_index_loads_in_chromium(self):
        if not os.path.exists(CHROMIUM):
            self.skipTest(f"{CHROMIUM} is absent (install Debian's chromium package, as "
                          "scripts/setup.sh does); the browser check did not run")
        index = os.path.join(self.out, "index.html")
        shot = os.path.join(self.dir, "report.png")
        problems = check_page(index, screenshot=shot)
        self.assertEqual(problems, [])
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        with Image.open(shot) as im:
            self.assertEqual(im.size[0], 1280)
            self.assertGreater(im.size[1], 2000)

        # The checker must be able to fail: break references in a copy.
        broken = os.path.join(self.dir, "broken-copy")
        shutil.rmtree(broken, ignore_errors=True)
        shutil.copytree(self.out, broken)
        hostile = next(d for d in self.summaries if "we ird" in d)  # "%" is "%25" on disk
        os.remove(os.path.join(broken, hostile, "k3.png"))
        os.remove(os.path.join(broken, "photos", "china.jpg", "elbow.svg"))
        os.remove(os.path.join(broken, "photos", "coffee.png", "summary.json"))
        problems = check_page(os.path.join(broken, "index.html"))
        text = "\n".join(problems)
        self.assertIn("image does not load", text)
        self.assertIn(urllib.parse.quote(f"{hostile}/k3.png"), text)
        self.assertIn("china.jpg/elbow.svg", text)
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
                expected.append((s["config"]["job"], s["input"]["rel"], r))
        self.assertEqual(len(rows), len(expected))
        for row, (job, rel, r) in zip(rows, expected):
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
        self.assertIn("a b&amp;&lt;x&gt;&#39;&quot;.jpg", html)
        self.assertNotRegex(html, r"(src|href)=\"[^#\"][^\"]*[ #?'<>&]")
        self.assertIn("decode_failed", html)
        self.assertIn("broken.jpg", html)
        self.assertIn("<h3>Failures (1)</h3>", html)
        self.assertNotRegex(html, r"(src|href)=\"(https?:|//|/)")
        self.assertNotIn("<script", html)
        self.assertEqual(html.count('class="image"'), len(self.summaries))

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
