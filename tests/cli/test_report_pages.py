"""The report at scale and over time:
  - run.json's collection curve equals the mean, 10th and 90th percentile of
    the per-image normalised inertia curves recomputed here from the
    summaries (numpy), flat curves left out;
  - report = light | full | none: which files each writes, the overview's
    table data, and that the key is not in the config hash (changing it
    redoes no image; the pages follow at once, `kmq report` keeps them);
  - a run interrupted by SIGINT after a change of configuration, then
    resumed: each image's status in run.json and in the overview's data is
    judged against the current configuration (ok, stale, pending; never ok
    for old results), and the resumed run reports its sessions' summed wall
    time and the first session's start."""
import json
import os
import re
import shutil
import signal
import time
import unittest

import numpy as np
from PIL import Image

import kmqtest as kt

REPORT_FILES = ("thumb.jpg", "preview.jpg", "elbow.svg", "restarts.svg", "index.html")


def table_rows(out):
    with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
        html = f.read()
    m = re.search(r'<script type="application/json" id="kmq-rows">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def noise_image(path, seed, size=48):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, 3)
    img = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img, "RGB").save(path)


class Curve(unittest.TestCase):
    def test_curve_is_the_mean_and_percentiles_of_normalised_curves(self):
        d = kt.fresh_dir("pages_curve")
        inp = os.path.join(d, "in")
        os.makedirs(inp)
        for name in kt.BUNDLED:
            shutil.copy(os.path.join(kt.PHOTOS, name), inp)
        for i in range(5):
            noise_image(os.path.join(inp, f"noise{i}.png"), i)
        # One colour: a flat curve, left out of the mean.
        Image.new("RGB", (16, 16), (10, 200, 30)).save(os.path.join(inp, "flat.png"))
        ks = [2, 3, 5, 8, 12]
        job = kt.write_job(os.path.join(d, "job.ini"), f"""
[run]
output = out
[defaults]
k = {", ".join(map(str, ks))}
restarts = 1
[job all]
input = in
""")
        kt.run("run", job, "--quiet", check_code=0)
        out = os.path.join(d, "out")
        run = kt.load_json(os.path.join(out, "run.json"))
        curves = []
        for im in run["images"]:
            s = kt.load_json(os.path.join(out, im["dir"], "summary.json"))
            v = np.array([r["inertia"] for r in s["results"]], dtype=float)
            self.assertEqual([r["k"] for r in s["results"]], ks)
            if v.max() > v.min():
                curves.append((v - v.min()) / (v.max() - v.min()))
        curves = np.array(curves)
        self.assertEqual(len(curves), 9)  # every image but the flat one
        elbow = run["jobs"][0]["elbow"]
        self.assertEqual(elbow["images"], 9)
        curve = elbow["curve"]
        self.assertEqual([p["k"] for p in curve], ks)
        np.testing.assert_allclose([p["mean"] for p in curve], curves.mean(axis=0),
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose([p["p10"] for p in curve],
                                   np.percentile(curves, 10, axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose([p["p90"] for p in curve],
                                   np.percentile(curves, 90, axis=0), rtol=1e-12, atol=1e-15)
        self.assertEqual(curve[0]["mean"], 1.0)
        self.assertEqual(curve[-1]["mean"], 0.0)
        # The overview draws it: the band and the elbow's mark.
        with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
            html = f.read()
        self.assertIn('class="band"', html)
        if elbow["k"] is not None:
            self.assertIn(f"elbow k = {elbow['k']}", html)


class Modes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("pages_modes")
        inp = os.path.join(cls.dir, "in")
        os.makedirs(inp)
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"), inp)
        cls.out = os.path.join(cls.dir, "out")

    def job(self, light, full, none):
        return kt.write_job(os.path.join(self.dir, "job.ini"), f"""
[run]
output = out
[defaults]
k = 2, 4, 8
restarts = 1
[job a]
input = in
report = {light}
[job b]
input = in
report = {full}
[job c]
input = in
report = {none}
""")

    def files(self, job):
        return set(os.listdir(os.path.join(self.out, job, "coffee.png")))

    def test_modes_files_hash_and_switch(self):
        job = self.job("light", "full", "none")
        kt.run("run", job, "--quiet", check_code=0)
        light, full, none = self.files("a"), self.files("b"), self.files("c")
        self.assertEqual({f for f in light if not f.endswith(".png") and f != "summary.json"},
                         {"thumb.jpg", "index.html"})
        self.assertTrue(set(REPORT_FILES) <= full, full)
        self.assertTrue({"k2.palette.svg", "k4.colors.svg"} <= full, full)
        self.assertEqual(none, {"summary.json", "k2.png", "k4.png", "k8.png"})
        for name in ("index.html", "report.css"):
            self.assertTrue(os.path.isfile(os.path.join(self.out, name)))
        # The colour scatter is made small.
        self.assertLess(os.path.getsize(os.path.join(self.out, "b", "coffee.png",
                                                     "k4.colors.svg")), 80_000)
        summaries = {j: kt.load_json(os.path.join(self.out, j, "coffee.png", "summary.json"))
                     for j in "abc"}
        self.assertNotIn("report", summaries["a"]["config"])  # the default is not written
        self.assertEqual(summaries["b"]["config"]["report"], "full")
        self.assertEqual(summaries["c"]["config"]["report"], "none")
        # Not in the config hash: the same file has the same hash in all three.
        self.assertEqual(len({s["config"]["hash"] for s in summaries.values()}), 1)
        rows = {r[2]: r for r in table_rows(self.out)}
        self.assertEqual(rows["a"][13], 3)  # thumbnail and page
        self.assertEqual(rows["b"][13], 3)
        self.assertEqual(rows["c"][13], 0)  # none: neither

        # Every job none: no page at all, nothing redone.
        job = self.job("none", "none", "none")
        proc = kt.run("run", job, check_code=0)
        self.assertIn("3 already done", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.out, "index.html")))
        self.assertFalse(os.path.exists(os.path.join(self.out, "report.css")))
        for j in "abc":
            self.assertNotIn("index.html", self.files(j))
        # Back to light: the pages return at once, still nothing redone;
        # a thumbnail needs the pixels, so only images that have one show it.
        job = self.job("light", "light", "light")
        proc = kt.run("run", job, check_code=0)
        self.assertIn("3 already done", proc.stderr)
        for j in "abc":
            self.assertIn("index.html", self.files(j))
        rows = {r[2]: r for r in table_rows(self.out)}
        self.assertEqual((rows["a"][13], rows["b"][13], rows["c"][13]), (3, 3, 2))
        # Under light the full job's chart files are not shown any more.
        with open(os.path.join(self.out, "b", "coffee.png", "index.html")) as f:
            self.assertNotIn("colors.svg", f.read())
        # kmq report without the job goes by what the summaries record.
        before = {j: open(os.path.join(self.out, j, "coffee.png", "index.html")).read()
                  for j in "ab"}
        kt.run("report", self.out, check_code=0)
        with open(os.path.join(self.out, "b", "coffee.png", "index.html")) as f:
            self.assertIn("colors.svg", f.read())  # b's summary says full
        with open(os.path.join(self.out, "a", "coffee.png", "index.html")) as f:
            self.assertEqual(f.read(), before["a"])
        self.assertFalse(os.path.exists(os.path.join(self.out, "c", "coffee.png", "index.html")))


class Key(unittest.TestCase):
    def test_bad_value_validate_and_flag(self):
        d = kt.fresh_dir("pages_key")
        china = os.path.join(kt.PHOTOS, "china.jpg")
        job = kt.write_job(os.path.join(d, "job.ini"), "[run]\noutput = out\n[job a]\n"
                           f"input = {china}\nk = 4\nrestarts = 1\nreport = pretty\n")
        for cmd in ("run", "validate"):
            proc = kt.run(cmd, job)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn("job.ini:7:", proc.stderr)
            self.assertIn("report = 'pretty' is not one of light, full, none", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "out")))
        job = kt.write_job(os.path.join(d, "job.ini"), "[run]\noutput = out\n[job a]\n"
                           f"input = {china}\nk = 4\nrestarts = 1\nreport = Full\n")
        self.assertRegex(kt.run("validate", job, check_code=0).stdout, r"report\s*=?\s*full")
        # The flag of kmq quantize: none writes no page and no picture.
        out = os.path.join(d, "q")
        kt.run("quantize", china, "-k", "4", "--report", "none", "-o", out, "--quiet",
               check_code=0)
        self.assertEqual(sorted(os.listdir(out)),
                         [".kmq.lock", "china.jpg", "elbow.csv", "run.json"])
        self.assertEqual(sorted(os.listdir(os.path.join(out, "china.jpg"))),
                         ["k4.png", "summary.json"])
        self.assertIn("--report", kt.run("quantize", "--help", check_code=0).stdout)


class InterruptedThenResumed(unittest.TestCase):
    def test_statuses_follow_the_current_config(self):
        d = kt.fresh_dir("pages_resume")
        inp = os.path.join(d, "in")
        os.makedirs(inp)
        n = 6 if kt.SANITIZE else 16
        for i in range(n):
            noise_image(os.path.join(inp, f"img{i:02d}.png"), i, size=160)
        out = os.path.join(d, "out")
        log = os.path.join(d, "run.log")

        def job(ks):
            return kt.write_job(os.path.join(d, "job.ini"), f"""
[run]
output = out
[defaults]
k = {ks}
restarts = 3
[job j]
input = in
""")

        # Session 0: config A, complete.
        kt.run("run", job("2, 3"), "--quiet", check_code=0)
        # Session 1: config B, interrupted after a few images.
        job_b = job("2, 3, 5, 9")
        if os.path.exists(log):
            os.remove(log)
        proc = kt.start("run", job_b, "--threads", "1", "--log", log)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(log):
                with open(log) as f:
                    if f.read().count(": ok,") >= 2:
                        break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        self.assertEqual(proc.returncode, 130, err)
        first = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(first["status"], "interrupted")
        self.assertEqual(first["seconds"]["sessions"], 1)

        def expected_statuses():
            """Each image's status as the files on disk say, judged here."""
            want = {}
            for name in sorted(os.listdir(os.path.join(out, "j"))):
                path = os.path.join(out, "j", name, "summary.json")
                if not os.path.exists(path):
                    want[name] = "pending"
                else:
                    s = kt.load_json(path)
                    want[name] = "ok" if s["config"]["k"] == [2, 3, 5, 9] else "stale"
            for i in range(n):
                want.setdefault(f"img{i:02d}.png", "pending")
            return want

        want = expected_statuses()
        got = {im["rel"]: im["status"] for im in first["images"]}
        self.assertEqual(got, want)
        self.assertIn("stale", got.values())  # old-config results: never ok
        self.assertIn("ok", got.values())
        self.assertEqual(first["totals"]["ok"], list(want.values()).count("ok"))
        self.assertEqual(first["totals"]["not_done"], n - first["totals"]["ok"])
        self.assertEqual({r[1]: r[12] for r in table_rows(out)}, want)
        # kmq report with the job says the same.
        kt.run("report", out, "--job", job_b, check_code=1)
        again = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual({im["rel"]: im["status"] for im in again["images"]}, want)

        # Session 2: resumed to the end.
        proc = kt.run("run", job_b, "--threads", "2", check_code=0)
        ok_before = list(want.values()).count("ok")
        self.assertIn(f"{n - ok_before} done, {ok_before} already done", proc.stderr)
        done = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(done["status"], "complete")
        self.assertEqual([im["status"] for im in done["images"]], ["ok"] * n)
        sec = done["seconds"]
        self.assertEqual(sec["sessions"], 2)
        self.assertAlmostEqual(sec["wall"], first["seconds"]["wall"] + sec["last_session"],
                               places=9)
        self.assertEqual(done["started_utc"], first["started_utc"])
        # A finished run is not continued: the next session starts afresh.
        kt.run("run", job_b, "--quiet", check_code=0)
        self.assertEqual(kt.load_json(os.path.join(out, "run.json"))["seconds"]["sessions"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
