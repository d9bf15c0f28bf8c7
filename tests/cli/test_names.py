"""File names from the internet reaching paths and text: an input named like a
file kmq writes (run.json beside the image folders of `kmq quantize`, k2.png
or summary.json inside another image's folder) gets a folder of its own; a
name that is legal on disk but too long once escaped still gets a folder; an
image at the bottom of a deep tree is in the report; a name with terminal
controls cannot forge or colour a line on stderr, in the log or in `kmq
validate`; a name that starts like a spreadsheet formula is not one in
elbow.csv. Every file is generated here."""
import csv
import os
import struct
import subprocess
import unittest
import zlib

import kmqtest as kt


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def tiny_png(seed=0):
    """A 4 x 4 RGB PNG with a few colours (seed varies them)."""
    rows = b"".join(b"\x00" + bytes((x * 40 + y * 7 + seed * 13) % 256 for x in range(12))
                    for y in range(4))
    ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def put(folder, name, seed=0):
    """Writes a tiny PNG at folder/name (name: str or bytes, may hold '/')."""
    path = os.path.join(os.fsencode(folder), os.fsencode(name))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(tiny_png(seed))


def run_bytes(*args):
    """Runs kmq; returns (code, stdout bytes, stderr bytes)."""
    proc = subprocess.run([kt.KMQ, *args], capture_output=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


class FlatLayout(unittest.TestCase):
    """`kmq quantize` puts image folders directly in OUT, beside run.json,
    elbow.csv and index.html."""

    def test_inputs_named_like_run_files(self):
        d = kt.fresh_dir("names_flat")
        dl = os.path.join(d, "dl")
        for i, name in enumerate(("run.json", "index.html", "a.png", "elbow.csv/x.png")):
            put(dl, name, i)
        out = os.path.join(d, "out")
        proc = kt.run("quantize", os.path.join(dl, "*"), "-k", "2", "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for name in ("run.json", "index.html", "elbow.csv"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
        run = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(run["status"], "complete")
        self.assertEqual(sorted(i["rel"] for i in run["images"]),
                         ["a.png", "elbow.csv/x.png", "index.html", "run.json"])
        for item in run["images"]:
            self.assertEqual(item["status"], "ok", item)
            self.assertNotIn(item["dir"].split("/")[0], ("run.json", "index.html", "elbow.csv"))
            self.assertTrue(os.path.isfile(os.path.join(out, item["dir"], "summary.json")))
        # The overview's table links each image's page by its escaped folder.
        with open(os.path.join(out, "index.html"), encoding="utf-8") as f:
            self.assertIn('["%2572un.json","run.json",', f.read())
        with open(os.path.join(out, "%72un.json", "index.html"), encoding="utf-8") as f:
            page = f.read()
        self.assertIn('href="k2.png"', page)
        self.assertIn('href="../report.css"', page)


class NestedNames(unittest.TestCase):
    """Two inputs of one job: a file photo.png in one, a folder photo.png in
    the other holding files named like photo.png's outputs."""

    def test_names_like_image_outputs(self):
        d = kt.fresh_dir("names_nested")
        put(os.path.join(d, "a"), "photo.png", 0)
        for i, name in enumerate(("photo.png/k2.png", "photo.png/thumb.jpg",
                                  "photo.png/index.html/x.png", "photo.png/summary.json/x.png")):
            put(os.path.join(d, "b"), name, i + 1)
        job = kt.write_job(os.path.join(d, "job.ini"), "[run]\noutput = out\n[defaults]\nk = 2\n"
                           "restarts = 1\n[job j]\ninput = a, b\nrecursive = true\n")
        proc = kt.run("run", job)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = os.path.join(d, "out")
        run = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(len(run["images"]), 5)
        self.assertEqual([i["status"] for i in run["images"]], ["ok"] * 5, run["images"])
        # photo.png's own outputs are files, not the other images' folders.
        for name in ("k2.png", "thumb.jpg", "index.html", "summary.json"):
            self.assertTrue(os.path.isfile(os.path.join(out, "j", "photo.png", name)), name)
        dirs = [i["dir"] for i in run["images"]]
        self.assertEqual(len(set(dirs)), 5)
        # A second run finds every image done.
        proc = kt.run("run", job)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("5 already done", proc.stderr)


class LongNames(unittest.TestCase):
    """A name of at most 255 bytes may need three times as many once its
    bytes are percent-encoded."""

    def test_names_longer_once_escaped(self):
        d = kt.fresh_dir("names_long")
        names = [b"\xe9" * 100 + b".png", b"%" * 120 + b".png",
                 b"\xe9" * 120 + b"1.png", b"\xe9" * 120 + b"2.png",
                 b"\xe6\x97\xa5" * 80 + b".png"]  # 244 bytes of UTF-8, kept as it is
        for i, name in enumerate(names):
            put(os.path.join(d, "in"), name, i)
        out = os.path.join(d, "out")
        proc = kt.run("quantize", os.path.join(d, "in"), "-k", "2", "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        run = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual([i["status"] for i in run["images"]], ["ok"] * len(names))
        dirs = [os.fsencode(i["dir"]) for i in run["images"]]
        self.assertEqual(len(set(dirs)), len(names))
        for folder in dirs:
            self.assertLessEqual(len(folder), 255, folder)
        self.assertIn(b"\xe6\x97\xa5" * 80 + b".png", dirs)


class DeepTree(unittest.TestCase):
    """Folders nest up to 256 deep in a recursive input; the report finds
    the images at the bottom as well as `kmq run` made them."""

    def test_deep_image_is_reported(self):
        d = kt.fresh_dir("names_deep")
        put(os.path.join(d, "in"), "top.png", 0)
        put(os.path.join(d, "in", *(["d"] * 100)), "deep.png", 1)
        job = kt.write_job(os.path.join(d, "job.ini"), "[run]\noutput = out\n[defaults]\nk = 2\n"
                           "restarts = 1\n[job j]\ninput = in\nrecursive = true\n")
        proc = kt.run("run", job)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = os.path.join(d, "out")
        for cmd in ("run", "report"):
            if cmd == "report":
                kt.run("report", out, check_code=0)
            run = kt.load_json(os.path.join(out, "run.json"))
            self.assertEqual(run["status"], "complete", cmd)
            self.assertEqual(sorted((i["rel"].count("/"), i["status"]) for i in run["images"]),
                             [(0, "ok"), (100, "ok")], cmd)


class Terminal(unittest.TestCase):
    """Names holding ESC, newlines or C1 controls, printed by kmq."""

    def test_job_error_holds_no_control_characters(self):
        d = kt.fresh_dir("names_term_error")
        # Too deep a tree is a job error that names the folder.
        deep = os.path.join(os.fsencode(d), b"in", b"\x1b[2J\x1b]0;title\x07\nkmq: forged")
        deep = os.path.join(deep, *([b"a"] * 260))
        os.makedirs(deep)
        job = kt.write_job(os.path.join(d, "job.ini"), "[run]\noutput = out\n[defaults]\nk = 2\n"
                           "[job j]\ninput = in\nrecursive = true\n")
        for cmd in ("run", "validate"):
            code, _, err = run_bytes(cmd, job)
            self.assertEqual(code, 2, err)
            self.assertIn(b"nest deeper", err)
            self.assertNotIn(b"\x1b", err)
            self.assertNotIn(b"\x07", err)
            self.assertEqual(err.count(b"\n"), 1, err)

    def test_validate_listing(self):
        d = kt.fresh_dir("names_term_validate")
        for i, name in enumerate((b"\x1b[31mred.png", b"two\nlines.png", b"c1\xc2\x9b2J.png",
                                  b"raw\x9b2J.png")):
            put(os.path.join(d, "in"), name, i)
        job = kt.write_job(os.path.join(d, "job.ini"), "[run]\noutput = out\n[defaults]\nk = 2\n"
                           "[job j]\ninput = in\n")
        code, listing, err = run_bytes("validate", job)
        self.assertEqual(code, 0, err)
        for bad in (b"\x1b", b"\x9b"):
            self.assertNotIn(bad, listing)
        self.assertIn(b"images           = 4\n", listing)
        self.assertEqual(len([l for l in listing.split(b"\n") if l.startswith(b"    ")]), 4,
                         listing)
        self.assertIn(b"red.png", listing)

    def test_progress_and_log(self):
        d = kt.fresh_dir("names_term_log")
        for i, name in enumerate((b"c1\xc2\x9b2J.png", b"raw\x9b2J.png", b"\xe9t\xe9.png",
                                  "ok \u00e9t\u00e9.png".encode())):
            put(os.path.join(d, "in"), name, i)
        job = kt.write_job(os.path.join(d, "job.ini"), "[run]\noutput = out\n[defaults]\nk = 2\n"
                           "restarts = 1\n[job j]\ninput = in\n")
        log = os.path.join(d, "run.log")
        code, _, err = run_bytes("run", job, "--log", log)
        self.assertEqual(code, 0, err)
        with open(log, "rb") as f:
            text = f.read()
        for where in (err, text):
            self.assertNotIn(b"\x9b", where)
            where.decode("utf-8")  # strict: no byte outside UTF-8 reaches a terminal
            self.assertIn("ok \u00e9t\u00e9.png: ok".encode(), where)
        self.assertEqual(text.count(b"\n"), 5)


class Spreadsheet(unittest.TestCase):
    """elbow.csv opened in a spreadsheet: a field starting with = + - @ would
    be taken for a formula."""

    def test_formula_names(self):
        d = kt.fresh_dir("names_csv")
        names = ["=HYPERLINK(\"x\",\"y\").png", "+1+1.png", "-2+3.png", "@SUM(A1).png",
                 "\tx.png", "plain.png"]
        for i, name in enumerate(names):
            put(os.path.join(d, "in"), name, i)
        out = os.path.join(d, "out")
        proc = kt.run("quantize", os.path.join(d, "in"), "-k", "2", "-o", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(out, "elbow.csv"), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        got = sorted(row["image"] for row in rows)
        want = sorted(("'" + n if n[0] in "=+-@\t" else n) for n in names)
        self.assertEqual(got, want)
        # run.json keeps the names as they are.
        run = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(sorted(i["rel"] for i in run["images"]), sorted(names))


if __name__ == "__main__":
    unittest.main()
