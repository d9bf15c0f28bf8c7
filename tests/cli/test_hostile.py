"""Hostile and broken inputs in one batch beside good photos: every bad case
is a per-image error with a stable code and a message a person can act on,
never a crash, hang or escape; every good image succeeds; exit code 1;
nothing is written outside the output root. Also: symlinks planted in the
output tree, an output root that is a file, a full disk, unreadable files
(as an unprivileged user) and job-file mistakes at the command line."""
import os
import shutil
import stat
import struct
import subprocess
import unittest
import zlib

import kmqtest as kt

try:
    from PIL import Image
except ImportError:  # pragma: no cover - python3-pil is a test dependency
    Image = None


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png_bytes(width, height, depth, color_type, raw_rows, level=9):
    """A PNG built by hand: raw_rows is the filtered scanline data."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(raw_rows, level)) + png_chunk(b"IEND", b""))


def zlib_bomb_png(width, height):
    """A 1-bit grey PNG of width x height zeros: a few KB on disk that
    would decode to width * height pixels."""
    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", data) +
            png_chunk(b"IEND", b""))


def jpeg_huge_header(jpeg):
    """A real JPEG whose SOF0 header is patched to declare 65000 x 65000
    pixels (4.2e9): a decompression bomb as far as the header goes."""
    data = bytearray(jpeg)
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


def snapshot(root, skip):
    """(path, size, mtime) of everything under root except the paths in
    skip (the output root and the log)."""
    seen = set()
    skip = {os.path.abspath(p) for p in skip}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.abspath(os.path.join(dirpath, d)) not in skip]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.path.abspath(p) in skip:
                continue
            st = os.lstat(p)
            seen.add((p, st.st_size if not stat.S_ISDIR(st.st_mode) else 0, st.st_mtime_ns
                      if not stat.S_ISDIR(st.st_mode) else 0))
    return seen


GOOD = ["china.jpg", "coffee.png"]


class HostileBatch(unittest.TestCase):
    """One recursive job over a folder of >= 20 hostile cases and 2 photos."""

    @classmethod
    def setUpClass(cls):
        # The batch lives one level down, so that "nothing appeared beside
        # the output root" is checked in a folder no other test writes to.
        cls.dir = os.path.join(kt.fresh_dir("hostile"), "batch")
        os.makedirs(cls.dir)
        cls.inp = os.path.join(cls.dir, "in")
        os.makedirs(cls.inp)
        inp = cls.inp
        with open(os.path.join(kt.PHOTOS, "china.jpg"), "rb") as f:
            jpeg = f.read()
        with open(os.path.join(kt.PHOTOS, "coffee.png"), "rb") as f:
            png = f.read()
        for name in GOOD:
            shutil.copy(os.path.join(kt.PHOTOS, name), inp)

        def put(name, data):
            path = os.path.join(inp, name) if isinstance(name, str) else os.path.join(
                os.fsencode(inp), name)
            with open(path, "wb") as f:
                f.write(data)

        # name -> (expected code or tuple of acceptable codes, words in message)
        # Codes are those the image adapter gives; where libvips decides
        # between two stable codes for junk, both are accepted.
        cls.bad = {}
        put("zero.jpg", b"")
        cls.bad["zero.jpg"] = ("decode_failed", "empty")
        put("truncated.jpg", jpeg[: len(jpeg) // 3])
        cls.bad["truncated.jpg"] = ("decode_failed", "")
        put("truncated.png", png[: len(png) // 3])
        cls.bad["truncated.png"] = ("decode_failed", "")
        put("header_only.png", png[:33])
        cls.bad["header_only.png"] = ("decode_failed", "")
        put("random.png", bytes((i * 7919 + 13) % 251 for i in range(4096)))
        cls.bad["random.png"] = ("unsupported", "not an image")
        put("random.jpg", b"\xff\xd8\xff\xe0" + bytes((i * 31 + 7) % 256 for i in range(4096)))
        cls.bad["random.jpg"] = ("decode_failed", "")
        put("text.gif", b"GIF89a? this is not a picture\n")
        cls.bad["text.gif"] = (("decode_failed", "unsupported"), "")
        put("junk.tif", b"II*\x00" + b"\xff" * 64)
        cls.bad["junk.tif"] = (("decode_failed", "unsupported"), "")
        put("bomb_header.png", png_bytes(100000, 100000, 8, 2, b"\x00" * 3000))
        cls.bad["bomb_header.png"] = ("too_large", "max_pixels")
        put("bomb_zlib.png", zlib_bomb_png(8000, 8000))
        cls.bad["bomb_zlib.png"] = ("too_large", "max_pixels")
        put("bomb_header.jpg", jpeg_huge_header(jpeg))
        cls.bad["bomb_header.jpg"] = ("too_large", "max_pixels")
        bad_crc = bytearray(png)
        bad_crc[60] ^= 0xFF  # inside the first IDAT: data and CRC disagree
        put("bad_crc.png", bytes(bad_crc))
        cls.bad["bad_crc.png"] = ("decode_failed", "")
        put("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" '
            b'height="100000"><rect width="100%" height="100%"/></svg>\n')
        cls.bad["svg.png"] = (("too_large", "unsupported"), "")
        os.mkfifo(os.path.join(inp, "fifo.png"))
        cls.bad["fifo.png"] = ("unreadable", "not a regular file")
        os.symlink("/dev/zero", os.path.join(inp, "devzero.jpg"))
        cls.bad["devzero.jpg"] = ("unreadable", "not a regular file")
        os.symlink(os.path.join(cls.dir, "nowhere.png"), os.path.join(inp, "dangling.png"))
        cls.bad["dangling.png"] = ("not_found", "")
        os.symlink("selfloop.png", os.path.join(inp, "selfloop.png"))
        cls.bad["selfloop.png"] = (("unreadable", "not_found"), "")

        # Good but unusual images: they must succeed.
        cls.odd_ok = {}
        put("one_pixel.png", png_bytes(1, 1, 8, 2, b"\x00\x10\x20\x30"))
        cls.odd_ok["one_pixel.png"] = 1
        put("flat.png", png_bytes(64, 48, 8, 2, (b"\x00" + b"\x7f\x20\xc0" * 64) * 48))
        cls.odd_ok["flat.png"] = 1
        rows = b"".join(b"\x00" + (b"\x00\x00\x00" * 8 + b"\xff\xff\xff" * 8) * 2
                        for _ in range(16))
        put("two_colours.png", png_bytes(32, 16, 8, 2, rows))
        cls.odd_ok["two_colours.png"] = 2
        put("wide.png", png_bytes(100000, 1, 8, 0, b"\x00" + bytes(i % 251 for i in
                                                                   range(100000))))
        cls.odd_ok["wide.png"] = None
        # Names: spaces, a newline, non-UTF-8 bytes, leading dots, '%'.
        for name in ("with space.png", "new\nline.png", ".hidden.png", "%2Ehidden.png",
                     "...png", "-rf.png"):
            put(name, png_bytes(4, 4, 8, 2, (b"\x00" + b"\x10\x20\x30\x40\x50\x60" * 2) * 4))
            cls.odd_ok[name] = 2
        put(b"latin1_\xe9\xff.png", png_bytes(2, 2, 8, 2, (b"\x00" + b"\x01\x02\x03" * 2) * 2))
        cls.odd_ok[os.fsdecode(b"latin1_\xe9\xff.png")] = 1
        # A folder named like an image (walked as a folder), one named "..x"
        # holding an image, and a symlink loop back to the input root.
        os.makedirs(os.path.join(inp, "folder.jpg", "..x"))
        put(os.path.join("folder.jpg", "..x", "inner.png"),
            png_bytes(3, 3, 8, 2, (b"\x00" + b"\x00\x00\x00\x09\x09\x09\x00\x00\x00") * 3))
        cls.odd_ok[os.path.join("folder.jpg", "..x", "inner.png")] = 2
        os.symlink("..", os.path.join(inp, "folder.jpg", "loop"))
        os.symlink(".", os.path.join(inp, "selfdir"))

        cls.job = kt.write_job(os.path.join(cls.dir, "job.ini"), """
[run]
output = out
seed = 3
[defaults]
k = 2, 8
restarts = 1
max_iter = 20
max_pixels = 4000000
[job h]
input = in
input = in/fifo.png
input = in/devzero.jpg
recursive = true
""")
        cls.out = os.path.join(cls.dir, "out")
        parent = os.path.dirname(cls.dir)
        cls.before = snapshot(cls.dir, [cls.out, cls.out + ".log"])
        cls.parent_before = sorted(os.listdir(parent))
        cls.proc = kt.run("run", cls.job, "--threads", "2", "--log",
                          os.path.join(cls.out + ".log"), timeout=300)
        cls.after = snapshot(cls.dir, [cls.out, cls.out + ".log"])
        cls.parent_after = sorted(os.listdir(parent))
        cls.run_json = kt.load_json(os.path.join(cls.out, "run.json"))
        cls.by_rel = {i["rel"]: i for i in cls.run_json["images"]}
        # JSON holds only UTF-8: a name with other bytes is listed with
        # U+FFFD in "rel"; its folder name keeps the bytes percent-encoded.
        latin1 = os.fsdecode(b"latin1_\xe9\xff.png")
        cls.by_rel[latin1] = next(i for i in cls.run_json["images"]
                                  if i["dir"] == "h/latin1_%E9%FF.png")
        del cls.by_rel[cls.by_rel[latin1]["rel"]]

    def item(self, rel):
        return self.by_rel[rel]

    def summary(self, rel):
        item = self.by_rel[rel]
        return kt.load_json(os.path.join(self.out, item["dir"], "summary.json"))

    def test_corpus_is_large_enough(self):
        self.assertGreaterEqual(len(self.bad) + len(self.odd_ok), 20)

    def test_exit_code_is_1_without_crash(self):
        self.assertEqual(self.proc.returncode, 1, self.proc.stderr[-3000:])
        self.assertNotIn("Sanitizer", self.proc.stderr)
        self.assertIn("FAILED", self.proc.stderr)

    def test_every_bad_case_has_code_and_message(self):
        for name, (codes, words) in self.bad.items():
            with self.subTest(name=name):
                self.assertIn(name, self.by_rel, sorted(self.by_rel))
                s = self.summary(name)
                self.assertEqual(s["status"], "error")
                codes = codes if isinstance(codes, tuple) else (codes,)
                self.assertIn(s["error"]["code"], codes, s["error"])
                self.assertTrue(s["error"]["message"])
                self.assertIn(words, s["error"]["message"])
                self.assertNotIn("\n", s["error"]["message"])
                folder = os.path.join(self.out, self.by_rel[name]["dir"])
                self.assertEqual(os.listdir(folder), ["summary.json"])
                # The message is also on stderr and in the log.
                self.assertIn(s["error"]["code"], self.proc.stderr)

    def test_good_and_odd_images_succeed(self):
        for name in GOOD + list(self.odd_ok):
            with self.subTest(name=name):
                s = self.summary(name)
                self.assertEqual(s["status"], "ok", s.get("error"))
                want = self.odd_ok.get(name)
                for r in s["results"]:
                    if want is not None:
                        self.assertEqual(r["k_effective"], min(r["k"], want))
                    png = os.path.join(self.out, self.by_rel[name]["dir"], r["files"]["indexed"]
                                       ["path"])
                    w, h, _, _ = kt.png_header(png)
                    self.assertEqual((w, h), (s["input"]["width"], s["input"]["height"]))

    def test_every_input_is_listed_once(self):
        dirs = [i["dir"] for i in self.run_json["images"]]
        self.assertEqual(len(dirs), len(set(dirs)))
        self.assertEqual(set(self.by_rel), set(self.bad) | set(self.odd_ok) | set(GOOD))
        self.assertEqual(len(dirs), len(self.by_rel))
        self.assertEqual(self.run_json["totals"]["failed"], len(self.bad))

    def test_names_stay_inside_output_root(self):
        out_real = os.path.realpath(self.out)
        for item in self.run_json["images"]:
            folder = os.path.realpath(os.path.join(self.out, item["dir"]))
            self.assertTrue(folder.startswith(out_real + os.sep), item["dir"])
            for part in item["dir"].split("/"):
                self.assertNotIn(part, ("", ".", ".."))
                self.assertFalse(any(ord(c) < 0x20 for c in part), item["dir"])
        self.assertEqual(self.before, self.after)
        self.assertEqual([n for n in self.parent_after if n not in self.parent_before], [])
        self.assertEqual(kt.temp_files(self.out), [])

    def test_log_lists_every_failure(self):
        with open(self.out + ".log", errors="replace") as f:
            log = f.read()
        self.assertEqual(log.count("FAILED"), len(self.bad))
        self.assertIn("run ended", log)


class OutputTree(unittest.TestCase):
    def setUp(self):
        self.dir = kt.fresh_dir("hostile_out")
        self.inp = os.path.join(self.dir, "in")
        os.makedirs(self.inp)
        shutil.copy(os.path.join(kt.PHOTOS, "china.jpg"), self.inp)
        self.job = kt.write_job(os.path.join(self.dir, "job.ini"), """
[run]
output = out
[defaults]
k = 2
restarts = 1
[job j]
input = in
""")

    def test_output_root_is_a_file(self):
        with open(os.path.join(self.dir, "out"), "w") as f:
            f.write("precious\n")
        proc = kt.run("run", self.job)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("it is a file", proc.stderr)
        with open(os.path.join(self.dir, "out")) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_planted_symlinks_are_not_followed(self):
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.makedirs(elsewhere)
        out = os.path.join(self.dir, "out")
        os.makedirs(os.path.join(out, "j"))
        # The image's own folder is a symlink to a folder outside OUT.
        os.symlink(elsewhere, os.path.join(out, "j", "china.jpg"))
        proc = kt.run("run", self.job)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("symlink", proc.stderr)
        self.assertEqual(os.listdir(elsewhere), [])
        # The job folder itself is the symlink.
        os.unlink(os.path.join(out, "j", "china.jpg"))
        os.rmdir(os.path.join(out, "j"))
        os.symlink(elsewhere, os.path.join(out, "j"))
        proc = kt.run("run", self.job)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("write_failed", proc.stderr)
        self.assertIn("symlink", proc.stderr)
        self.assertEqual(os.listdir(elsewhere), [])
        # The image that got no folder is still in run.json, with its error.
        run = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(run["status"], "failures")
        self.assertEqual([(i["rel"], i["status"], i["error"]["code"]) for i in run["images"]],
                         [("china.jpg", "error", "write_failed")])
        self.assertIn("symlink", run["images"][0]["error"]["message"])
        # A symlink planted as the final file is replaced, not written through.
        os.unlink(os.path.join(out, "j"))
        os.unlink(os.path.join(out, "run.json"))
        target = os.path.join(elsewhere, "victim")
        with open(target, "w") as f:
            f.write("keep\n")
        os.makedirs(os.path.join(out, "j", "china.jpg"))
        for name in ("k2.png", "summary.json"):
            os.symlink(target, os.path.join(out, "j", "china.jpg", name))
        os.symlink(target, os.path.join(out, "run.json"))
        proc = kt.run("run", self.job)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(target) as f:
            self.assertEqual(f.read(), "keep\n")
        for name in ("k2.png", "summary.json"):
            self.assertFalse(os.path.islink(os.path.join(out, "j", "china.jpg", name)))
        self.assertFalse(os.path.islink(os.path.join(out, "run.json")))

    def test_full_disk(self):
        out = os.path.join(self.dir, "out")
        os.makedirs(out)
        for i in range(4):
            for name in kt.BUNDLED:
                shutil.copy(os.path.join(kt.PHOTOS, name), os.path.join(self.inp, f"{i}{name}"))
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", out],
                          capture_output=True).returncode != 0:
            self.skipTest("cannot mount a tmpfs here (not root?)")
        try:
            proc = kt.run("run", self.job, "--threads", "2")
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("No space left on device", proc.stderr)
            self.assertNotIn("Sanitizer", proc.stderr)
            self.assertEqual(kt.temp_files(out), [])
            ok = 0
            for item in sorted(os.listdir(os.path.join(out, "j"))):
                folder = os.path.join(out, "j", item)
                names = os.listdir(folder)
                if "summary.json" not in names:
                    # Not even the error summary fitted: nothing else is left
                    # that could look done; stderr named the image.
                    self.assertEqual(names, [], item)
                    continue
                s = kt.load_json(os.path.join(folder, "summary.json"))
                if s["status"] == "ok":
                    ok += 1
                    for r in s["results"]:
                        kt.png_header(os.path.join(folder, r["files"]["indexed"]["path"]))
                else:
                    self.assertEqual(s["error"]["code"], "write_failed")
                    self.assertIn("No space left", s["error"]["message"])
                    self.assertEqual(names, ["summary.json"])
            self.assertGreaterEqual(ok, 1)
            self.assertGreaterEqual(proc.stderr.count("FAILED (write_failed)"), 1)
            # With room again, a re-run finishes only what is missing.
            subprocess.run(["mount", "-o", "remount,size=64m", out], check=True)
            proc = kt.run("run", self.job, "--threads", "2")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn(f"{ok} already done, 0 failed", proc.stderr)
            run = kt.load_json(os.path.join(out, "run.json"))
            self.assertEqual(run["status"], "complete")
            self.assertEqual(run["totals"]["ok"], 17)
        finally:
            subprocess.run(["umount", out], capture_output=True)


class Unreadable(unittest.TestCase):
    def test_permission_denied_as_unprivileged_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to switch to user nobody")
        if not shutil.which("setpriv"):
            self.skipTest("setpriv not installed")
        d = "/tmp/kmq-test-unreadable"
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "in"))
        os.chmod(d, 0o777)
        for name in ("china.jpg", "coffee.png"):
            shutil.copy(os.path.join(kt.PHOTOS, name), os.path.join(d, "in"))
        os.chmod(os.path.join(d, "in", "coffee.png"), 0)
        kt.write_job(os.path.join(d, "job.ini"), "[run]\noutput = out\n[defaults]\nk = 2\n"
                     "restarts = 1\n[job j]\ninput = in\nrecursive = true\n")
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", kt.KMQ,
               "run", os.path.join(d, "job.ini")]
        probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                kt.KMQ, "--version"], capture_output=True, text=True)
        if probe.returncode != 0:
            self.skipTest(f"user nobody cannot run {kt.KMQ}: {probe.stderr.strip()}")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            s = kt.load_json(os.path.join(d, "out", "j", "coffee.png", "summary.json"))
            self.assertEqual(s["error"]["code"], "unreadable")
            self.assertIn("Permission denied", s["error"]["message"])
            s = kt.load_json(os.path.join(d, "out", "j", "china.jpg", "summary.json"))
            self.assertEqual(s["status"], "ok")
            # An unreadable folder under a recursive input is a job error
            # found before any work starts (docs/design.md: unreadable inputs).
            os.makedirs(os.path.join(d, "in", "closed"))
            shutil.copy(os.path.join(kt.PHOTOS, "china.jpg"), os.path.join(d, "in", "closed"))
            os.chmod(os.path.join(d, "in", "closed"), 0)
            proc = subprocess.run(cmd + ["--force"], capture_output=True, text=True, timeout=300)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn("job.ini:7:", proc.stderr)
            self.assertIn("closed", proc.stderr)
            self.assertIn("Permission denied", proc.stderr)
        finally:
            if os.path.isdir(os.path.join(d, "in", "closed")):
                os.chmod(os.path.join(d, "in", "closed"), 0o755)
            shutil.rmtree(d, ignore_errors=True)


class JobFileMistakes(unittest.TestCase):
    """Every mistake exits 2 with FILE:LINE (or the file) before any work."""

    def check(self, body, where, words, code=2):
        d = kt.fresh_dir("hostile_job")
        shutil.copy(os.path.join(kt.PHOTOS, "china.jpg"), d)
        job = os.path.join(d, "bad.ini")
        if isinstance(body, bytes):
            with open(job, "wb") as f:
                f.write(body)
        else:
            kt.write_job(job, body)
        proc = kt.run("run", job)
        self.assertEqual(proc.returncode, code, proc.stderr)
        self.assertIn(where, proc.stderr)
        self.assertIn(words, proc.stderr)
        self.assertNotIn("Sanitizer", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "out")))

    def test_mistakes(self):
        img = "china.jpg"
        cases = [
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nk = 0\n", "bad.ini:5:", "0"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nk = 4-\n", "bad.ini:5:", "4-"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nk = 2-8:0\n", "bad.ini:5:", ""),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nk = 99999999999999999999\n",
             "bad.ini:5:", ""),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nrestarts = 0\n", "bad.ini:5:",
             "restarts"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\ntol = nan\n", "bad.ini:5:", "tol"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\ninit = best\n", "bad.ini:5:",
             "best"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nsave = jpeg\n", "bad.ini:5:",
             "jpeg"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nbackground = #12345\n",
             "bad.ini:5:", "background"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nrecursive = maybe\n",
             "bad.ini:5:", "maybe"),
            ("[run]\noutput = out\n[job ../escape]\ninput = china.jpg\n", "bad.ini:3:",
             "job name"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\n[job a]\ninput = china.jpg\n",
             "bad.ini:5:", "duplicate"),
            ("[run]\noutput = out\n[nonsense]\n", "bad.ini:3:", "nonsense"),
            ("[run]\noutput = out\n[job a]\nk = 4\ninput = nothing*.png\n", "bad.ini:5:",
             "nothing"),
            ("[run]\noutput = out\n[job a]\ninput = china.jpg\nk = 4\nk = 8\n", "bad.ini:", ""),
            ("[run]\noutput = out\n[job a\ninput = china.jpg\n", "bad.ini:3:", ""),
            ("[run]\noutput = out\nseed = -1\n[job a]\ninput = china.jpg\n", "bad.ini:3:",
             "seed"),
            ("[run]\noutput = out\n", "bad.ini", "job"),
            (b"[run]\noutput = out\n[job a]\ninput = china.jpg\n\x00\xff\xfe = 1\n", "bad.ini:",
             ""),
            ("", "bad.ini", ""),
        ]
        for body, where, words in cases:
            with self.subTest(body=body):
                self.check(body, where, words)
        self.assertTrue(img)

    def test_job_file_is_a_folder_or_missing(self):
        d = kt.fresh_dir("hostile_job2")
        proc = kt.run("run", d)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        proc = kt.run("run", os.path.join(d, "missing.ini"))
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("missing.ini", proc.stderr)

    def test_job_file_is_a_fifo_or_a_device(self):
        # A FIFO that nobody writes to (an archive can hold one named
        # job.ini) reads as empty instead of blocking; /dev/zero stops at
        # the size cap; a pipe with a writer is still read to its end.
        d = kt.fresh_dir("hostile_job3")
        fifo = os.path.join(d, "job.ini")
        os.mkfifo(fifo)
        for cmd in ("validate", "run"):
            proc = kt.run(cmd, fifo, timeout=30)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn("job.ini", proc.stderr)
        proc = kt.run("run", "/dev/zero", timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("larger than 16 MiB", proc.stderr)
        body = (f"[run]\noutput = {d}/out\n[defaults]\nk = 2\n[job j]\n"
                f"input = {kt.PHOTOS}/coffee.png\n")
        proc = subprocess.run([kt.KMQ, "validate", "/dev/stdin"], input=body, text=True,
                              capture_output=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("coffee.png", proc.stdout)

    def test_bad_options(self):
        for args in (["--threads", "-1"], ["--threads", "x"], ["--shard", "2/2"],
                     ["--shard", "1"], ["--log"], ["--frobnicate"]):
            with self.subTest(args=args):
                proc = kt.run("run", os.path.join(kt.SOURCE, "configs", "demo.ini"), *args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertTrue(proc.stderr.strip())


if __name__ == "__main__":
    unittest.main()
