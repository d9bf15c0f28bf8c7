"""Files from the internet and runs that stop early: formats are chosen by
content and only the documented ones are read; decompression bombs are
refused from their header at the cost of reading a header; truncated pixel
data is an error in every format; an output root inside a recursive input is
never read back; every run that starts leaves a run.json that says what is
on disk; a signal at any moment exits 130; temporaries stay inside OUT even
after SIGKILL. Every file is generated here."""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

import hostile_files as hf
import kmqtest as kt

def measured(*args, env=None):
    """Runs kmq; returns (returncode, stderr, peak RSS in KiB, wall seconds)
    of that one process (wait4 reports the child's own rusage)."""
    import tempfile
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([kt.KMQ, *args], stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    return proc.returncode, text, usage.ru_maxrss, wall


def summary_of(out, rel):
    return kt.load_json(os.path.join(out, rel, "summary.json"))


class DisguisedFormats(unittest.TestCase):
    """Files whose content is not what their name says (issue: untrusted loaders)."""

    @classmethod
    def setUpClass(cls):
        d = kt.fresh_dir("untrusted-formats")
        inp = os.path.join(d, "in")
        os.makedirs(inp)
        cls.dir, cls.inp = d, inp
        shutil.copy(os.path.join(kt.PHOTOS, "china.jpg"), inp)
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"), inp)

        # name -> words the message must hold (the real format's name)
        cls.cases = {}
        for name, (data, words) in hf.disguised().items():
            with open(os.path.join(inp, name), "wb") as f:
                f.write(data)
            cls.cases[name] = words

        cls.job = kt.write_job(os.path.join(d, "job.ini"), """
[run]
output = out
[defaults]
k = 2, 4
restarts = 1
[job u]
input = in
""")
        cls.out = os.path.join(d, "out")
        cls.code, cls.stderr, _, cls.wall = measured("run", cls.job, "--threads", "2")
        cls.run_json = kt.load_json(os.path.join(cls.out, "run.json"))

    def test_each_is_unsupported_with_its_real_format_named(self):
        self.assertEqual(self.code, 1, self.stderr[-2000:])
        for name, words in self.cases.items():
            with self.subTest(name=name):
                s = summary_of(self.out, os.path.join("u", name))
                self.assertEqual(s["status"], "error")
                self.assertEqual(s["error"]["code"], "unsupported", s["error"])
                self.assertIn(words, s["error"]["message"])
                # Refused at the cost of a header: no decoder ran.
                # (generous bounds for a loaded machine: a decoder that ran
                # would take seconds to minutes on these headers)
                self.assertLess(s["seconds"]["total"], 5.0 if kt.SANITIZE else 2.0)

    def test_good_photos_in_the_same_batch_are_ok(self):
        for name in ("china.jpg", "coffee.png"):
            self.assertEqual(summary_of(self.out, os.path.join("u", name))["status"], "ok")
        self.assertEqual(self.run_json["totals"]["ok"], 2)
        self.assertEqual(self.run_json["totals"]["failed"], len(self.cases))

    def test_a_job_may_widen_the_list(self):
        d = kt.fresh_dir("untrusted-widen")
        with open(os.path.join(d, "small.png"), "wb") as f:  # an SVG named .png
            f.write(b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
                    b'<rect width="32" height="48" fill="#ff0000"/></svg>\n')
        out = os.path.join(d, "o")
        proc = kt.run("quantize", os.path.join(d, "small.png"), "-k", "2", "-o", out,
                      "--formats", "png,svg")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        s = summary_of(out, "small.png")
        self.assertEqual((s["input"]["format"], s["input"]["width"]), ("svg", 64))
        # The same file without the widening is refused, its format named.
        proc = kt.run("quantize", os.path.join(d, "small.png"), "-k", "2", "-o", out)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("'svg'", summary_of(out, "small.png")["error"]["message"])
        proc = kt.run("quantize", os.path.join(d, "small.png"), "-k", "2", "-o", out,
                      "--formats", "png,nosuch")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown format 'nosuch'", proc.stderr)


class Bombs(unittest.TestCase):
    """Files of a few hundred bytes whose headers promise gigapixels
    (issue: decompression bombs inside max_pixels)."""

    @classmethod
    def setUpClass(cls):
        d = kt.fresh_dir("untrusted-bombs")
        cls.dir = d
        cls.bombs = hf.bombs(d)
        one = os.path.join(d, "one.png")
        with open(one, "wb") as f:
            f.write(hf.one_pixel_png())
        cls.base = measured("quantize", one, "-k", "2", "-o", os.path.join(d, "o-one"),
                            "--threads", "2")
        cls.results = {}
        for name, (data, _, _) in cls.bombs.items():
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            cls.results[name] = measured("quantize", path, "-k", "2", "-o",
                                         os.path.join(d, "o-" + name), "--threads", "2")

    def test_refused_from_the_header_with_the_numbers(self):
        for name, (data, code, words) in self.bombs.items():
            with self.subTest(name=name):
                self.assertLess(len(data), 1 << 20)
                rc, err, _, _ = self.results[name]
                self.assertEqual(rc, 1, err)
                s = summary_of(os.path.join(self.dir, "o-" + name), name)
                self.assertEqual(s["error"]["code"], code, s["error"])
                self.assertIn(words, s["error"]["message"])
                self.assertRegex(s["error"]["message"], r"\d+ x \d+")

    def test_cost_no_more_than_a_one_pixel_image(self):
        if kt.SANITIZE:
            self.skipTest("sanitizers change memory and time")
        self.assertEqual(self.base[0], 0, self.base[1])
        for name in self.bombs:
            with self.subTest(name=name):
                _, _, peak, wall = self.results[name]
                self.assertLessEqual(peak, self.base[2] + 16 * 1024)  # KiB
                self.assertLess(wall, self.base[3] + 5.0)  # the decoders took 12-49 s

    def test_budget_is_a_job_key(self):
        # The padded progressive JPEG is a real, if odd, file: with no budget
        # its 9.9e8 pixels would be decoded; a small budget refuses a photo.
        d = kt.fresh_dir("untrusted-budget")
        path = os.path.join(d, "p.jpg")
        hf.encode(os.path.join(kt.PHOTOS, "china.jpg"), path, progressive=True)
        out = os.path.join(d, "o")
        proc = kt.run("quantize", path, "-k", "2", "-o", out, "--max-decode-bytes", "1M")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("max_decode_bytes is 1.0e6", summary_of(out, "p.jpg")["error"]["message"])
        proc = kt.run("quantize", path, "-k", "2", "-o", out, "--max-decode-bytes", "2M")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = kt.run("quantize", path, "-k", "2", "-o", out, "--max-decode-bytes", "lots")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("max_decode_bytes", proc.stderr)


class Truncated(unittest.TestCase):
    """Cut or corrupt pixel data is decode_failed in every format, never
    grey filler marked ok."""

    def test_each_format(self):
        d = kt.fresh_dir("untrusted-truncated")
        src = os.path.join(kt.PHOTOS, "china.jpg")
        files = {}
        with open(src, "rb") as f:
            jpeg = f.read()
        sos = jpeg.index(b"\xff\xda")
        files["cut.jpg"] = jpeg[:len(jpeg) // 2]
        files["early_eoi.jpg"] = jpeg[:(sos + len(jpeg)) // 2] + b"\xff\xd9"
        prog = hf.encode(src, os.path.join(d, "src_prog.jpg"), progressive=True)
        files["prog_eoi.jpg"] = prog[:len(prog) // 2] + b"\xff\xd9"
        for ext, opts in (("png", {}), ("gif", {}), ("webp", {"lossless": True}),
                          ("tif", {"compression": "tiff_lzw"})):
            data = hf.encode(src, os.path.join(d, "src." + ext), **opts)
            files["cut." + ext] = data[:len(data) // 2]
        adam7 = os.path.join(d, "src_i.png")
        subprocess.run(["vips", "copy", src, adam7 + "[interlace]"], check=True,
                       capture_output=True)
        with open(adam7, "rb") as f:
            data = f.read()
        files["cut_interlaced.png"] = data[:len(data) // 2]
        inp = os.path.join(d, "in")
        os.makedirs(inp)
        for name, data in files.items():
            with open(os.path.join(inp, name), "wb") as f:
                f.write(data)
        job = kt.write_job(os.path.join(d, "job.ini"), """
[run]
output = out
[defaults]
k = 2
restarts = 1
[job t]
input = in
""")
        proc = kt.run("run", job, "--threads", "2")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        for name in files:
            with self.subTest(name=name):
                s = summary_of(os.path.join(d, "out"), os.path.join("t", name))
                self.assertEqual(s["status"], "error", s)
                self.assertEqual(s["error"]["code"], "decode_failed", s["error"])
                self.assertEqual(os.listdir(os.path.join(d, "out", "t", name)), ["summary.json"])
        # The sources themselves decode: the failures are the cuts.
        for name in ("src.png", "src.gif", "src.webp", "src.tif", "src_prog.jpg"):
            out = os.path.join(d, "o-" + name)
            self.assertEqual(kt.run("quantize", os.path.join(d, name), "-k", "2", "-o",
                                    out).returncode, 0, name)


class SelfIngestion(unittest.TestCase):
    def test_output_inside_a_recursive_input(self):
        d = kt.fresh_dir("untrusted-self")
        photos = os.path.join(d, "photos")
        os.makedirs(os.path.join(photos, "sub"))
        shutil.copy(os.path.join(kt.PHOTOS, "china.jpg"), photos)
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"), os.path.join(photos, "sub"))
        job = kt.write_job(os.path.join(d, "job.ini"), """
[run]
output = photos/kmq-out
[defaults]
k = 2, 3
restarts = 1
save = indexed, labels, palette
[job j]
input = photos
recursive = true
""")
        for attempt in range(3):
            proc = kt.run("run", job, "--force" if attempt == 2 else "--threads=2")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            run = kt.load_json(os.path.join(photos, "kmq-out", "run.json"))
            self.assertEqual(sorted(i["rel"] for i in run["images"]),
                             ["china.jpg", "sub/coffee.png"], attempt)
            self.assertEqual(run["status"], "complete")
        self.assertFalse(os.path.exists(os.path.join(photos, "kmq-out", "j", "kmq-out")))
        proc = kt.run("validate", job, check_code=0)
        self.assertIn("skipped folder", proc.stdout)
        self.assertIn("kmq-out", proc.stdout)
        listed = [l.strip() for l in proc.stdout.splitlines() if l.startswith("    ")]
        self.assertEqual([os.path.relpath(p, d) for p in listed],
                         ["photos/china.jpg", "photos/sub/coffee.png"])
        # A copy of an output folder elsewhere in the input is left out as
        # well: it holds kmq's run.json and summaries.
        shutil.copytree(os.path.join(photos, "kmq-out"), os.path.join(photos, "old-run"))
        proc = kt.run("run", job, check_code=0)
        run = kt.load_json(os.path.join(photos, "kmq-out", "run.json"))
        self.assertEqual(len(run["images"]), 2)


class SpecialFilesInFolders(unittest.TestCase):
    def test_fifo_and_device_link_are_reported(self):
        d = kt.fresh_dir("untrusted-special")
        inp = os.path.join(d, "in")
        os.makedirs(inp)
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"), inp)
        os.mkfifo(os.path.join(inp, "pipe.png"))
        os.symlink("/dev/zero", os.path.join(inp, "zero.jpg"))
        job = kt.write_job(os.path.join(d, "job.ini"),
                           "[run]\noutput = out\n[defaults]\nk = 2\nrestarts = 1\n"
                           "[job s]\ninput = in\n")
        proc = kt.run("run", job, timeout=120)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        for name in ("pipe.png", "zero.jpg"):
            s = summary_of(os.path.join(d, "out"), os.path.join("s", name))
            self.assertEqual(s["error"]["code"], "unreadable", s["error"])
            self.assertIn("not a regular file", s["error"]["message"])


class LinksOutOfTheInput(unittest.TestCase):
    """An archive may hold links to the user's own files: under the default
    links = inside they are not read (a file fails as unreadable, a folder is
    not entered and validate lists it); links = follow reads them."""

    def test_links(self):
        d = kt.fresh_dir("untrusted-links")
        private = os.path.join(d, "private")
        inp = os.path.join(d, "in")
        os.makedirs(os.path.join(private, "album"))
        os.makedirs(inp)
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"), os.path.join(private, "secret.png"))
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"),
                    os.path.join(private, "album", "inner.png"))
        shutil.copy(os.path.join(kt.PHOTOS, "china.jpg"), inp)
        os.symlink("china.jpg", os.path.join(inp, "alias.jpg"))  # stays inside: read
        os.symlink(os.path.join("..", "private", "secret.png"), os.path.join(inp, "out.png"))
        os.symlink(os.path.join("..", "private", "album"), os.path.join(inp, "album"))
        text = ("[run]\noutput = out\n[defaults]\nk = 2\nrestarts = 1\n{}[job l]\n"
                "input = in\nrecursive = true\n")
        job = kt.write_job(os.path.join(d, "job.ini"), text.format(""))
        proc = kt.run("run", job)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        run = kt.load_json(os.path.join(d, "out", "run.json"))
        by_rel = {i["rel"]: i for i in run["images"]}
        # The same file twice is listed once, under the smaller name.
        self.assertEqual(set(by_rel), {"alias.jpg", "out.png"})
        self.assertEqual(by_rel["alias.jpg"]["status"], "ok")
        self.assertEqual(by_rel["out.png"]["error"]["code"], "unreadable")
        self.assertIn("links = follow", by_rel["out.png"]["error"]["message"])
        self.assertEqual(os.listdir(os.path.join(d, "out", "l", "out.png")), ["summary.json"])
        listing = kt.run("validate", job, check_code=0).stdout
        self.assertIn(os.path.join("in", "album"), listing)
        self.assertIn("skipped folder", listing)
        kt.write_job(job, text.format("links = follow\n"))
        proc = kt.run("run", job)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        run = kt.load_json(os.path.join(d, "out", "run.json"))
        self.assertEqual({i["rel"]: i["status"] for i in run["images"]},
                         {"alias.jpg": "ok", "out.png": "ok", "album/inner.png": "ok"})


class ReservedNames(unittest.TestCase):
    def test_job_named_like_a_run_file(self):
        d = kt.fresh_dir("untrusted-reserved")
        for name in ("run.json", "index.html", "elbow.csv"):
            job = kt.write_job(os.path.join(d, "job.ini"),
                               f"[run]\noutput = out\n[defaults]\nk = 2\n[job {name}]\n"
                               f"input = {kt.PHOTOS}/coffee.png\n")
            for cmd in ("validate", "run"):
                proc = kt.run(cmd, job)
                self.assertEqual(proc.returncode, 2, (name, cmd))
                self.assertIn(f"job.ini:5: job name '{name}'", proc.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "out")))


def slow_job(d, photos=("astronaut.png", "china.jpg", "coffee.png", "chelsea_alpha.png")):
    inp = os.path.join(d, "in")
    os.makedirs(inp, exist_ok=True)
    for name in photos:
        shutil.copy(os.path.join(kt.PHOTOS, name), inp)
    # Slow enough that a signal at 1 s still finds the run at work; under
    # the sanitizers everything is several times slower already.
    ks, restarts = ("2-8", 1) if kt.SANITIZE else ("2-24", 2)
    return kt.write_job(os.path.join(d, "job.ini"), f"""
[run]
output = out
[defaults]
k = {ks}
restarts = {restarts}
[job s]
input = in
""")


class Signals(unittest.TestCase):
    """A signal at any moment: exit 130 and a run.json that says so."""

    def signalled(self, job, delay, sig=signal.SIGINT, extra=()):
        proc = kt.start("run", job, "--threads", "2", "--quiet", *extra)
        # Until kmq has run its first instruction, a signal can only kill
        # it: wait for its handler to show in /proc, then count the delay.
        caught = 1 << (sig - 1)
        for _ in range(2000):
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    mask = next(int(l.split()[1], 16) for l in f if l.startswith("SigCgt:"))
            except (OSError, StopIteration):
                break
            if mask & caught:
                break
            time.sleep(0.001)
        time.sleep(delay)
        alive = proc.poll() is None
        if alive:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        return alive, proc.returncode, err

    def test_sigint_early_and_late(self):
        d = kt.fresh_dir("untrusted-sigint")
        job = slow_job(d)
        out = os.path.join(d, "out")
        for delay in (0.2, 0.5, 1.0):
            with self.subTest(delay=delay):
                shutil.rmtree(out, ignore_errors=True)
                alive, code, err = self.signalled(job, delay)
                self.assertTrue(alive, "the run ended before the signal: make it slower")
                self.assertEqual(code, 130, err)
                run = kt.load_json(os.path.join(out, "run.json"))
                self.assertEqual(run["status"], "interrupted")
                self.assertEqual(run["totals"]["images"], 4)
                self.assertEqual(run["totals"]["ok"] + run["totals"]["not_done"], 4)
                for image in run["images"]:
                    if image["status"] != "ok":
                        self.assertEqual(image["status"], "pending")
                        self.assertFalse(os.path.exists(os.path.join(out, image["dir"],
                                                                     "summary.json")))
                self.assertEqual(kt.temp_files(out), [])
                proc = kt.run("run", job, "--threads", "2", "--quiet")
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(kt.load_json(os.path.join(out, "run.json"))["status"],
                                 "complete")

    def test_sigterm_at_any_moment_is_130(self):
        d = kt.fresh_dir("untrusted-sigterm")
        job = slow_job(d, photos=("coffee.png", "china.jpg"))
        delay, seen = 0.0, 0
        while delay < 60:
            shutil.rmtree(os.path.join(d, "out"), ignore_errors=True)
            alive, code, err = self.signalled(job, delay, signal.SIGTERM)
            if not alive:
                break
            run_json = os.path.join(d, "out", "run.json")
            self.assertTrue(os.path.exists(run_json), delay)
            if code == 0:
                # The signal landed after the last image's work (the run was
                # alive when polled, then finished): a complete run, not a
                # killed one.
                self.assertEqual(kt.load_json(run_json)["status"], "complete", (delay, err))
                break
            seen += 1
            self.assertEqual(code, 130, (delay, err))
            delay = delay * 2 if delay else 0.02
        self.assertGreaterEqual(seen, 3)

    def test_force_then_interrupt_does_not_keep_complete(self):
        d = kt.fresh_dir("untrusted-force")
        job = slow_job(d)
        out = os.path.join(d, "out")
        kt.run("run", job, "--threads", "2", "--quiet", check_code=0)
        self.assertEqual(kt.load_json(os.path.join(out, "run.json"))["status"], "complete")
        alive, code, _ = self.signalled(job, 0.3, extra=("--force",))
        self.assertTrue(alive)
        self.assertEqual(code, 130)
        run = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(run["status"], "interrupted")
        for image in run["images"]:
            has_summary = os.path.exists(os.path.join(out, image["dir"], "summary.json"))
            self.assertEqual(image["status"] == "ok", has_summary, image)


class StaleResults(unittest.TestCase):
    def test_results_of_another_config_are_stale(self):
        d = kt.fresh_dir("untrusted-stale")
        job = slow_job(d, photos=("coffee.png", "china.jpg", "astronaut.png"))
        out = os.path.join(d, "out")
        with open(job) as f:
            text = f.read()
        kt.run("run", job, "--quiet", check_code=0)
        kt.write_job(job, re.sub(r"k = [0-9-]+", "k = 2, 5", text))
        # Shard 0 of 2 redoes its images; the others still hold k = 2-24.
        kt.run("run", job, "--quiet", "--shard", "0/2", check_code=0)
        run = kt.load_json(os.path.join(out, "run.json"))
        statuses = sorted(i["status"] for i in run["images"])
        self.assertIn("stale", statuses)  # 3 images: shard 1 has at least one
        self.assertEqual(run["status"], "incomplete")
        self.assertEqual(run["totals"]["not_done"], statuses.count("stale"))
        for image in run["images"]:
            ks = summary_of(out, image["dir"])["config"]["k"]
            self.assertEqual(image["status"] == "ok", ks == [2, 5], image)
        kt.run("run", job, "--quiet", "--shard", "1/2", check_code=0)
        run = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(run["status"], "complete")
        self.assertEqual(run["totals"]["ok"], 3)


class TemporariesStayInside(unittest.TestCase):
    """ImageMagick (a widened format) writes its pixel cache to a temporary
    file; it goes inside OUT, and the next run removes what a SIGKILL left."""

    def test_sigkill_leaves_nothing_outside(self):
        d = kt.fresh_dir("untrusted-temps")
        inp = os.path.join(d, "in")
        tmp = os.path.join(d, "tmp")
        os.makedirs(inp)
        os.makedirs(tmp)
        with open(os.path.join(inp, "t.png"), "wb") as f:
            f.write(b"# ImageMagick pixel enumeration: 2000,2000,255,srgb\n0,0: (255,0,0)\n")
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"), inp)
        job = kt.write_job(os.path.join(d, "job.ini"), """
[run]
output = out
[defaults]
k = 2
restarts = 1
formats = png, magick
[job m]
input = in
""")
        # A tiny area limit sends ImageMagick's pixel cache to disk.
        env = dict(os.environ, TMPDIR=tmp, MAGICK_AREA_LIMIT="1KB")
        out = os.path.join(d, "out")
        for delay in (0.02, 0.1, 0.3, 0.6):
            proc = kt.start("run", job, "--quiet", "--force", env=env)
            time.sleep(delay)
            proc.kill()
            proc.communicate()
            self.assertEqual(os.listdir(tmp), [], delay)
        proc = kt.run("run", job, "--quiet", env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(os.listdir(tmp), [])
        self.assertEqual(summary_of(out, "m/t.png")["input"]["format"], "magick")
        self.assertFalse(os.path.exists(os.path.join(out, ".kmq-scratch")))


if __name__ == "__main__":
    unittest.main()
