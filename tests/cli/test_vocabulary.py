"""One vocabulary: the job-key table inside kmq drives the job-file parser,
`kmq quantize`'s flags, `kmq validate`'s listing, the per-command --help and
the README's key table. Each key must appear in all of them with the same
default and range, and every command reads its options the same way."""
import os
import re
import unittest

import kmqtest as kt


def key_table():
    """Rows of `kmq help keys`: name -> (sections, range, default, help)."""
    rows = {}
    for line in kt.run("help", "keys", check_code=0).stdout.splitlines()[2:]:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = tuple(cells[1:])
    return rows


class Vocabulary(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = key_table()

    def test_table_is_complete(self):
        for name in ("output", "threads", "seed", "k", "restarts", "max_iter", "tol", "init",
                     "sample", "save", "background", "max_pixels", "max_decode_bytes", "formats",
                     "recursive", "identity", "input"):
            self.assertIn(name, self.keys)

    def test_readme_carries_the_table(self):
        with open(os.path.join(kt.SOURCE, "README.md")) as f:
            readme = f.read()
        m = re.search(r"<!-- keys: kmq help keys -->\n(.*?)<!-- /keys -->", readme, re.S)
        self.assertIsNotNone(m, "README lacks the generated key table")
        self.assertEqual(m.group(1), kt.run("help", "keys", check_code=0).stdout,
                         "README's key table differs from `kmq help keys`: paste it again")

    def test_every_default_parses_in_a_job_file(self):
        # Each default, written in a job file, is accepted and validate prints
        # it back (the value validate shows is what the parser stored).
        d = kt.fresh_dir("vocab-defaults")
        lines = []
        for name, (sections, _, default, _) in self.keys.items():
            if "defaults" in sections and default != "(required)":
                lines.append(f"{name} = {default}")
        job = kt.write_job(os.path.join(d, "job.ini"),
                           "[run]\noutput = out\n[defaults]\nk = 4\n" + "\n".join(lines) +
                           f"\n[job a]\ninput = {kt.PHOTOS}/coffee.png\n")
        out = kt.run("validate", job, check_code=0).stdout
        shown = dict(re.findall(r"^  (\w+) += (.*)$", out, re.M))
        for name, (sections, _, default, _) in self.keys.items():
            if "defaults" not in sections or default == "(required)":
                continue
            with self.subTest(key=name):
                self.assertIn(name, shown)
                if name == "tol":
                    self.assertEqual(float(shown[name]), float(default))
                else:
                    self.assertEqual(shown[name], default)

    def test_quantize_has_a_flag_per_job_key(self):
        helptext = kt.run("quantize", "--help", check_code=0).stdout
        for name, (sections, _, default, meaning) in self.keys.items():
            if "defaults" not in sections:
                continue
            with self.subTest(key=name):
                flag = "--" + name.replace("_", "-")
                line = next((l for l in helptext.splitlines()
                             if re.match(r"\s*(-\w, )?" + re.escape(flag) + " ", l)), None)
                self.assertIsNotNone(line, flag)
                self.assertIn(meaning, line)
                if default != "(required)":
                    self.assertIn(f"(default: {default})", line)

    def test_flags_parse_like_the_job_file(self):
        d = kt.fresh_dir("vocab-flags")
        photo = os.path.join(kt.PHOTOS, "coffee.png")
        out = os.path.join(d, "o")
        # -k8, --k=8, --max_iter (the job-file spelling) and options after
        # the image all work.
        kt.run("quantize", photo, "-k8", "-o", out, "--max_iter=7", "--restarts", "2",
               "--quiet", check_code=0)
        s = kt.load_json(os.path.join(out, "coffee.png", "summary.json"))
        self.assertEqual((s["config"]["k"], s["config"]["max_iter"], s["config"]["restarts"]),
                         ([8], 7, 2))
        kt.run("quantize", "--k=3", photo, "-o", out, "--quiet", check_code=0)
        # The same bad value gives the job file's message.
        proc = kt.run("quantize", photo, "-k", "4", "--restarts", "0")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("restarts = 0 is below 1", proc.stderr)
        proc = kt.run("quantize", photo)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("-k is required", proc.stderr)
        proc = kt.run("quantize", photo, photo, "-k", "4")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unexpected argument", proc.stderr)
        for cmd in ("run", "quantize", "bench", "report", "validate"):
            proc = kt.run(cmd, "--no-such-option")
            self.assertEqual(proc.returncode, 2)
            self.assertIn(f"kmq {cmd}: unknown option '--no-such-option'", proc.stderr)
        proc = kt.run("run", "job.ini", "--threads")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--threads needs a value", proc.stderr)

    def test_run_help_lists_every_option_with_defaults(self):
        out = kt.run("run", "--help", check_code=0).stdout
        for flag in ("--threads N", "--shard I/N", "--force", "--dry-run", "--log FILE", "--quiet"):
            self.assertIn(flag, out)
        self.assertIn("(default: 0)", out)
        out = kt.run("bench", "--help", check_code=0).stdout
        for flag in ("--image", "--k", "--restarts", "--threads-max", "--repeat", "--seed",
                     "--json", "--svg"):
            self.assertRegex(out, re.escape(flag) + r" .*\(default: ")


if __name__ == "__main__":
    unittest.main()
