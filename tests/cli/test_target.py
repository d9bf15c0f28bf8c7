"""The quality target (docs/design.md, Quality target): target_psnr picks,
per image, the smallest k of the list whose written image reaches the PSNR,
checked here against exhaustive fits of the same list (every k fitted, same
seed: each k's fit does not depend on the others); k = auto searches
2..256; a target no k reaches is a clear status, not a failure; the keys
are validated with FILE:LINE, in the config hash, listed by validate and
shown in the report."""
import filecmp
import math
import os
import re
import unittest

import kmqtest as kt

# Under the sanitizers every fit is many times slower: a shorter list and
# a lower target keep the same checks within minutes.
K_LIST = "4-64:4" if kt.SANITIZE else "8-256:8"
TARGET = 30.0 if kt.SANITIZE else 35.0


def job(d, body, name="job.ini", inputs=None):
    inputs = inputs or kt.PHOTOS
    return kt.write_job(os.path.join(d, name),
                        f"[run]\noutput = out\nseed = 5\n[defaults]\nrestarts = 1\n"
                        f"{body}[job a]\ninput = {inputs}\n")


def summaries(out):
    found = {}
    for name in kt.BUNDLED:
        found[name] = kt.load_json(os.path.join(out, "a", name, "summary.json"))
    return found


def reaches(result):
    return result["psnr_db"] is None or result["psnr_db"] >= TARGET


class AgainstExhaustive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = kt.fresh_dir("target_list")
        every = os.path.join(cls.d, "every")
        os.makedirs(every)
        kt.run("run", job(every, f"k = {K_LIST}\n"), "--quiet", check_code=0)
        cls.every = summaries(os.path.join(every, "out"))
        searched = os.path.join(cls.d, "searched")
        os.makedirs(searched)
        kt.run("run", job(searched, f"k = {K_LIST}\ntarget_psnr = {TARGET:g}\n"), "--quiet",
               check_code=0)
        cls.out = os.path.join(searched, "out")
        cls.every_out = os.path.join(every, "out")
        cls.searched = summaries(cls.out)

    def test_smallest_reaching_k_of_the_list(self):
        for name, s in self.searched.items():
            with self.subTest(image=name):
                every = {r["k"]: r for r in self.every[name]["results"]}
                ks = sorted(every)
                expected = next(k for k in ks if reaches(every[k]))
                self.assertEqual(s["target"]["k"], expected)
                self.assertTrue(s["target"]["reached"])
                self.assertEqual([r["k"] for r in s["results"]], [expected])
                chosen = s["results"][0]
                self.assertGreaterEqual(chosen["psnr_db"], TARGET)
                self.assertEqual(chosen["psnr_db"], every[expected]["psnr_db"])
                before = ks[ks.index(expected) - 1]
                self.assertLess(every[before]["psnr_db"], TARGET)
                # The k before the answer is one the search fitted and saw miss.
                fitted = {f["k"]: f for f in s["target"]["fitted"]}
                self.assertIn(before, fitted)
                self.assertIn(expected, fitted)
                # Each k fitted in the search is the exhaustive run's fit.
                for k, f in fitted.items():
                    self.assertEqual(f["mse_output"], every[k]["mse_output"], k)
                    self.assertEqual(f["psnr_db"], every[k]["psnr_db"], k)
                self.assertEqual(list(fitted), sorted(fitted))
                # Fewer fits than the list: the search does not fit every k.
                self.assertLessEqual(len(fitted), 2 * math.ceil(math.log2(len(ks))) + 1)
                # The written PNG is the exhaustive run's, byte for byte.
                png = f"k{expected}.png"
                self.assertTrue(filecmp.cmp(os.path.join(self.out, "a", name, png),
                                            os.path.join(self.every_out, "a", name, png),
                                            shallow=False))
                self.assertEqual(sorted(p for p in os.listdir(os.path.join(self.out, "a", name))
                                        if p.endswith(".png")), [png])

    def test_report_says_which_k_and_why(self):
        name = "coffee.png"
        s = self.searched[name]
        with open(os.path.join(self.out, "a", name, "index.html")) as f:
            page = f.read()
        self.assertIn(f"Quality target {TARGET:g} dB: <b>k = {s['target']['k']}</b> is the "
                      "smallest k", page)
        run = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(run["status"], "complete")
        with open(os.path.join(self.out, "index.html")) as f:
            self.assertNotIn("quality target (target_psnr) with any k", f.read())


class Auto(unittest.TestCase):
    def test_auto_against_neighbour_fits(self):
        d = kt.fresh_dir("target_auto")
        image = os.path.join(kt.PHOTOS, "coffee.png")
        kt.run("quantize", image, "-k", "auto", "--target-psnr", "33", "--restarts", "1",
               "-o", os.path.join(d, "auto"), "--quiet", check_code=0)
        s = kt.load_json(os.path.join(d, "auto", "coffee.png", "summary.json"))
        k = s["target"]["k"]
        self.assertEqual(s["config"]["k"], list(range(2, 257)))
        self.assertTrue(s["target"]["reached"])
        # About 2 log2(255) fits, against 255 for every k.
        self.assertLessEqual(len(s["target"]["fitted"]), 16)
        kt.run("quantize", image, "-k", f"{k - 1},{k}", "--restarts", "1", "-o",
               os.path.join(d, "pair"), "--quiet", check_code=0)
        pair = kt.load_json(os.path.join(d, "pair", "coffee.png", "summary.json"))["results"]
        self.assertLess(pair[0]["psnr_db"], 33)
        self.assertGreaterEqual(pair[1]["psnr_db"], 33)
        self.assertEqual(pair[1]["psnr_db"], s["results"][0]["psnr_db"])

    def test_target_no_k_reaches(self):
        d = kt.fresh_dir("target_missed")
        kt.run("run", job(d, "k = 2, 4\ntarget_psnr = 99\n",
                          inputs=os.path.join(kt.PHOTOS, "china.jpg")), "--quiet", check_code=0)
        s = kt.load_json(os.path.join(d, "out", "a", "china.jpg", "summary.json"))
        self.assertEqual(s["status"], "ok")
        self.assertEqual(s["target"], {"psnr_db": 99, "k": 4, "reached": False,
                                       "fitted": s["target"]["fitted"]})
        self.assertEqual([f["k"] for f in s["target"]["fitted"]], [2, 4])
        self.assertEqual([r["k"] for r in s["results"]], [4])
        with open(os.path.join(d, "out", "a", "china.jpg", "index.html")) as f:
            self.assertIn("not reached</b>; the largest k, 4, gives", f.read())
        with open(os.path.join(d, "out", "index.html")) as f:
            overview = f.read()
        self.assertIn("1 image never reached its quality target", overview)
        self.assertIn('"target missed"', overview)


class Keys(unittest.TestCase):
    def test_bad_values_are_job_file_errors(self):
        for body, line, words in (
                ("k = auto\n", 6, "k = auto needs target_psnr"),
                ("k = 4\ntarget_psnr = 0.5\n", 7, "target_psnr = 0.5 is not 0 (off) or in 1..200"),
                ("k = 4\ntarget_psnr = 300\n", 7, "target_psnr = 300 is not 0"),
                ("k = 4\ntarget_psnr = high\n", 7, "target_psnr = 'high' is not a number"),
                ("k = 4\ntarget_psnr = 30\npalette = shared\n", 6, "cannot be used with a shared")):
            with self.subTest(body=body):
                d = kt.fresh_dir("target_bad")
                path = job(d, body)
                for cmd in ("run", "validate"):
                    proc = kt.run(cmd, path)
                    self.assertEqual(proc.returncode, 2, proc.stderr)
                    self.assertIn(words, proc.stderr)
                    self.assertRegex(proc.stderr, rf"job\.ini:\d+:")
                self.assertFalse(os.path.exists(os.path.join(d, "out")))

    def test_validate_lists_and_hash_redoes(self):
        d = kt.fresh_dir("target_keys")
        china = os.path.join(kt.PHOTOS, "china.jpg")
        out = kt.run("validate", job(d, "k = auto\ntarget_psnr = 28\n", inputs=china),
                     check_code=0).stdout
        self.assertRegex(out, r"\bk\s*=\s*auto\b")
        self.assertRegex(out, r"target_psnr\s*=\s*28\b")
        summary = os.path.join(d, "out", "a", "china.jpg", "summary.json")
        kt.run("run", job(d, "k = 4-32:4\n", inputs=china), "--quiet", check_code=0)
        plain = kt.load_json(summary)
        self.assertNotIn("target_psnr", plain["config"])
        self.assertNotIn("target", plain)
        proc = kt.run("run", job(d, "k = 4-32:4\ntarget_psnr = 0\n", inputs=china), check_code=0)
        self.assertIn("1 already done", proc.stderr)
        proc = kt.run("run", job(d, "k = 4-32:4\ntarget_psnr = 25\n", inputs=china),
                      check_code=0)
        self.assertNotIn("1 already done", proc.stderr)
        first = kt.load_json(summary)
        self.assertNotEqual(first["config"]["hash"], plain["config"]["hash"])
        proc = kt.run("run", job(d, "k = 4-32:4\ntarget_psnr = 25\n", inputs=china),
                      check_code=0)
        self.assertIn("1 already done", proc.stderr)
        proc = kt.run("run", job(d, "k = 4-32:4\ntarget_psnr = 27\n", inputs=china),
                      check_code=0)
        self.assertNotIn("1 already done", proc.stderr)
        second = kt.load_json(summary)
        self.assertGreaterEqual(second["target"]["k"], first["target"]["k"])
        # The rebuilt report reads the target back.
        kt.run("report", os.path.join(d, "out"), check_code=0)
        with open(os.path.join(d, "out", "a", "china.jpg", "index.html")) as f:
            self.assertIn("Quality target 27 dB", f.read())


if __name__ == "__main__":
    unittest.main()
