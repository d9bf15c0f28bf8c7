"""Bad inputs become error summaries with stable codes while the good images
beside them succeed (exit 1); job-file mistakes exit 2 with FILE:LINE."""
import os
import shutil
import unittest

import kmqtest as kt


class BadInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("errors")
        imgs = os.path.join(cls.dir, "imgs")
        os.makedirs(imgs)
        shutil.copy(os.path.join(kt.PHOTOS, "china.jpg"), imgs)
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"), imgs)
        with open(os.path.join(kt.PHOTOS, "china.jpg"), "rb") as f:
            jpeg = f.read()
        with open(os.path.join(kt.PHOTOS, "coffee.png"), "rb") as f:
            png = f.read()
        cases = {
            "empty.jpg": b"",
            "random.png": bytes((i * 7919 + 13) % 251 for i in range(5000)),
            "truncated.jpg": jpeg[: len(jpeg) // 2],
            "truncated.png": png[: len(png) // 2],
            "text.gif": b"GIF89a? not really\n",
        }
        for name, data in cases.items():
            with open(os.path.join(imgs, name), "wb") as f:
                f.write(data)
        # A dangling symlink: listed by the folder, gone when opened.
        os.symlink(os.path.join(cls.dir, "nowhere.jpg"), os.path.join(imgs, "missing.jpg"))
        cls.job = kt.write_job(os.path.join(cls.dir, "job.ini"), f"""
[run]
output = out
[defaults]
k = 4, 8
restarts = 1
[job mixed]
input = imgs
""")
        cls.proc = kt.run("run", cls.job, "--threads", "2")
        cls.out = os.path.join(cls.dir, "out")

    def summary(self, name):
        return kt.load_json(os.path.join(self.out, "mixed", name, "summary.json"))

    def test_exit_code_is_1(self):
        self.assertEqual(self.proc.returncode, 1, self.proc.stderr)

    def test_good_images_succeed(self):
        for name in ("china.jpg", "coffee.png"):
            s = self.summary(name)
            self.assertEqual(s["status"], "ok")
            self.assertTrue(os.path.exists(os.path.join(self.out, "mixed", name, "k8.png")))

    def test_error_codes(self):
        expected = {
            "empty.jpg": ("decode_failed", "empty"),
            "random.png": ("unsupported", ""),
            "truncated.jpg": ("decode_failed", ""),
            "truncated.png": ("decode_failed", ""),
            "text.gif": ("", ""),
            "missing.jpg": ("not_found", ""),
        }
        for name, (code, words) in expected.items():
            s = self.summary(name)
            self.assertEqual(s["status"], "error", name)
            self.assertEqual(s["results"], [], name)
            self.assertTrue(s["error"]["message"], name)
            if code:
                self.assertEqual(s["error"]["code"], code, (name, s["error"]))
            else:
                self.assertIn(s["error"]["code"], ("unsupported", "decode_failed"), name)
            self.assertIn(words, s["error"]["message"], name)
            folder = os.path.join(self.out, "mixed", name)
            self.assertEqual(sorted(os.listdir(folder)), ["summary.json"], name)
        self.assertIn("FAILED", self.proc.stderr)

    def test_run_json_lists_failures(self):
        run = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(run["status"], "failures")
        self.assertEqual(run["totals"]["ok"], 2)
        self.assertEqual(run["totals"]["failed"], 6)
        failed = {os.path.basename(i["path"]): i["error"]["code"]
                  for i in run["images"] if i["status"] == "error"}
        self.assertEqual(failed["empty.jpg"], "decode_failed")
        self.assertEqual(failed["missing.jpg"], "not_found")

    def test_failed_images_are_retried(self):
        # A re-run redoes failed images (they are not "done") but skips good ones.
        proc = kt.run("run", self.job, "--threads", "2")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("2 already done, 6 failed", proc.stderr)


class JobFileErrors(unittest.TestCase):
    def check(self, body, line, words):
        d = kt.fresh_dir("joberr")
        job = kt.write_job(os.path.join(d, "bad.ini"), body)
        proc = kt.run("run", job)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f"bad.ini:{line}:", proc.stderr)
        self.assertIn(words, proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "out")))
        proc = kt.run("validate", job)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f"bad.ini:{line}:", proc.stderr)

    def test_unknown_key(self):
        self.check(f"[run]\noutput = out\n[job a]\ninput = {kt.PHOTOS}\nkk = 4\n", 5, "kk")

    def test_bad_k(self):
        self.check(f"[run]\noutput = out\n[defaults]\nk = 8-2\n[job a]\ninput = {kt.PHOTOS}\n",
                   4, "8-2")

    def test_k_too_large_for_indexed(self):
        self.check(f"[run]\noutput = out\n[job a]\ninput = {kt.PHOTOS}\nk = 300\n", 5, "300")

    def test_missing_input(self):
        self.check(f"[run]\noutput = out\n[job a]\nk = 4\ninput = {kt.PHOTOS}/nope.png\n", 5,
                   "nope.png")

    def test_usage(self):
        self.assertEqual(kt.run().returncode, 2)
        self.assertEqual(kt.run("frobnicate").returncode, 2)
        self.assertEqual(kt.run("run").returncode, 2)
        self.assertEqual(kt.run("quantize", os.path.join(kt.PHOTOS, "china.jpg")).returncode, 2)
        self.assertEqual(kt.run("--version", check_code=0).stdout.strip(), "kmq 0.1.0")
        self.assertIn("usage", kt.run("--help", check_code=0).stdout)
        for cmd in ("run", "quantize", "report", "bench", "validate"):
            out = kt.run(cmd, "--help", check_code=0).stdout
            self.assertTrue(out.startswith("usage: kmq " + cmd + " "), out)
            self.assertEqual(kt.run("help", cmd, check_code=0).stdout, out)
        self.assertIn("--threads-max", kt.run("bench", "-h", check_code=0).stdout)


if __name__ == "__main__":
    unittest.main()
