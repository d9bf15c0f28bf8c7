"""Overnight runs: resume by config hash, --force, per-job config changes
(stale k files removed), one writer per output root (shards excepted),
SIGINT/SIGTERM (exit 130, run.json "interrupted", re-run finishes the rest),
and progress: the live line under a pseudo-terminal, plain timestamped
lines on a pipe and in --log."""
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
import unittest

import kmqtest as kt

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def wait_for(predicate, timeout=120, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def make_inputs(d, copies):
    inp = os.path.join(d, "in")
    os.makedirs(inp, exist_ok=True)
    for i in range(copies):
        for name in kt.BUNDLED:
            shutil.copy(os.path.join(kt.PHOTOS, name), os.path.join(inp, f"{i}_{name}"))
    return inp


def read_text(path):
    with open(path, errors="replace") as f:
        return f.read()


def image_files(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


class Resume(unittest.TestCase):
    def setUp(self):
        self.dir = kt.fresh_dir("overnight_resume")
        self.inp = os.path.join(self.dir, "in")
        os.makedirs(self.inp)
        for name in ("china.jpg", "coffee.png"):
            shutil.copy(os.path.join(kt.PHOTOS, name), self.inp)
        self.out = os.path.join(self.dir, "out")
        self.write(a_k="2, 3, 4", b_k="2, 3, 4", seed=1)

    def write(self, a_k, b_k, seed):
        self.job = kt.write_job(os.path.join(self.dir, "job.ini"), f"""
[run]
output = out
seed = {seed}
[defaults]
restarts = 1
max_iter = 30
[job a]
input = in
k = {a_k}
[job b]
input = in
k = {b_k}
""")

    def summaries(self):
        found = {}
        for job in ("a", "b"):
            for name in ("china.jpg", "coffee.png"):
                p = os.path.join(self.out, job, name, "summary.json")
                found[(job, name)] = (os.stat(p).st_mtime_ns, kt.load_json(p))
        return found

    def run_ok(self, *extra):
        proc = kt.run("run", self.job, "--threads", "2", *extra)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def test_resume_force_and_changed_keys(self):
        self.run_ok()
        first = self.summaries()
        # Same config (threads do not count): everything is skipped, untouched.
        proc = self.run_ok("--threads", "1")
        self.assertIn("4 images: 0 done, 4 already done", proc.stderr)
        self.assertEqual(self.summaries(), first)
        # --force redoes everything.
        proc = self.run_ok("--force")
        self.assertIn("4 images: 4 done, 0 already done", proc.stderr)
        # A changed k list of one job redoes that job's images only, and
        # its folders lose the files of k values no longer listed.
        notes = os.path.join(self.out, "b", "china.jpg", "notes.txt")
        with open(notes, "w") as f:
            f.write("mine\n")
        before = self.summaries()
        self.write(a_k="2, 3, 4", b_k="5", seed=1)
        proc = self.run_ok()
        self.assertIn("4 images: 2 done, 2 already done", proc.stderr)
        after = self.summaries()
        for name in ("china.jpg", "coffee.png"):
            self.assertEqual(after[("a", name)], before[("a", name)])
            self.assertNotEqual(after[("b", name)][0], before[("b", name)][0])
            self.assertEqual(after[("b", name)][1]["config"]["k"], [5])
            files = image_files(os.path.join(self.out, "b", name))
            for f in files:
                self.assertFalse(re.match(r"k[234]\.", f), (name, files))
            self.assertNotIn("elbow.svg", files)  # only with >= 3 k values
            self.assertIn("k5.png", files)
        self.assertIn("notes.txt", image_files(os.path.join(self.out, "b", "china.jpg")))
        os.unlink(notes)
        # The redone folders hold exactly what a fresh run of that config writes.
        fresh = kt.fresh_dir("overnight_resume_fresh")
        shutil.copy(self.job, os.path.join(fresh, "job.ini"))
        os.symlink(self.inp, os.path.join(fresh, "in"))
        kt.run("run", os.path.join(fresh, "job.ini"), check_code=0)
        for job in ("a", "b"):
            for name in ("china.jpg", "coffee.png"):
                self.assertEqual(image_files(os.path.join(self.out, job, name)),
                                 image_files(os.path.join(fresh, "out", job, name)))
        # A changed seed redoes everything; a touched input redoes that image.
        self.write(a_k="2, 3, 4", b_k="5", seed=2)
        proc = self.run_ok()
        self.assertIn("4 images: 4 done, 0 already done", proc.stderr)
        os.utime(os.path.join(self.inp, "coffee.png"))
        proc = self.run_ok()
        self.assertIn("4 images: 2 done, 2 already done", proc.stderr)
        self.assertEqual(kt.temp_files(self.out), [])

    def test_failed_image_retried_and_fixed(self):
        bad = os.path.join(self.inp, "late.png")
        with open(bad, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n broken")
        proc = kt.run("run", self.job, "--threads", "2")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("FAILED (", proc.stderr)
        run = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(run["status"], "failures")
        shutil.copy(os.path.join(kt.PHOTOS, "astronaut.png"), bad)
        proc = self.run_ok()
        self.assertIn("6 images: 2 done, 4 already done, 0 failed", proc.stderr)
        self.assertEqual(kt.load_json(os.path.join(self.out, "run.json"))["status"], "complete")

    def test_stale_temporaries_are_removed(self):
        self.run_ok()
        folder = os.path.join(self.out, "a", "china.jpg")
        stale = [os.path.join(self.out, ".kmq-tmp.run.json.0123456789abcdef"),
                 os.path.join(folder, ".kmq-tmp.k2.png.0123456789abcdef")]
        for p in stale:
            with open(p, "wb") as f:
                f.write(b"partial")
        os.unlink(os.path.join(folder, "summary.json"))  # as if killed mid-image
        proc = self.run_ok()
        self.assertIn("1 done, 3 already done", proc.stderr)
        self.assertEqual(kt.temp_files(self.out), [])


class Locking(unittest.TestCase):
    def setUp(self):
        self.dir = kt.fresh_dir("overnight_lock")
        make_inputs(self.dir, 2)
        self.out = os.path.join(self.dir, "out")
        self.job = kt.write_job(os.path.join(self.dir, "job.ini"), """
[run]
output = out
[defaults]
k = 2, 4
restarts = 1
[job j]
input = in
""")

    def started(self, proc):
        """Waits until proc holds the lock (its first image folder exists),
        then stops it so the lock stays held while the test goes on."""
        wait_for(lambda: os.path.isdir(os.path.join(self.out, "j")) or proc.poll() is not None,
                 what="the first run to start")
        proc.send_signal(signal.SIGSTOP)
        self.assertIsNone(proc.poll(), "the first run finished too early")

    def finish(self, proc):
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=600)
        return proc.returncode, err

    def test_second_run_is_refused(self):
        first = kt.start("run", self.job, "--threads", "1")
        try:
            self.started(first)
            for extra in ([], ["--force"], ["--shard", "0/2"]):
                proc = kt.run("run", self.job, *extra)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn("in use by another kmq run", proc.stderr)
                self.assertIn(".kmq.lock", proc.stderr)
        finally:
            code, err = self.finish(first)
        self.assertEqual(code, 0, err)
        run = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(run["status"], "complete")
        self.assertEqual(run["totals"]["ok"], 8)
        for item in run["images"]:
            s = kt.load_json(os.path.join(self.out, item["dir"], "summary.json"))
            self.assertEqual(s["status"], "ok")
            for r in s["results"]:
                kt.png_header(os.path.join(self.out, item["dir"], r["files"]["indexed"]["path"]))
        self.assertEqual(kt.temp_files(self.out), [])

    def test_shards_share_a_root(self):
        first = kt.start("run", self.job, "--threads", "1", "--shard", "0/2")
        try:
            self.started(first)
            proc = kt.run("run", self.job, "--shard", "1/2")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            for extra in (["--shard", "0/2"], []):
                proc = kt.run("run", self.job, *extra)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn("in use by another kmq run", proc.stderr)
        finally:
            code, err = self.finish(first)
        self.assertEqual(code, 0, err)
        kt.run("report", self.out, check_code=0)
        run = kt.load_json(os.path.join(self.out, "run.json"))
        self.assertEqual(run["totals"]["ok"], 8)
        # After both shards, a plain run finds everything done.
        proc = kt.run("run", self.job, check_code=0)
        self.assertIn("0 done, 8 already done", proc.stderr)

    def test_shards_of_another_count_are_refused(self):
        # Shards of 2 and of 3 split the images differently and would share
        # some; while 0/2 runs, no shard of another N may start, whatever
        # its index, and 1/2 still may.
        first = kt.start("run", self.job, "--threads", "1", "--shard", "0/2")
        try:
            self.started(first)
            for other in ("1/3", "0/3", "2/3", "5/7"):
                proc = kt.run("run", self.job, "--shard", other)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn("is in use by shards of N = 2", proc.stderr)
                self.assertIn(f"--shard {other} cannot share it", proc.stderr)
                self.assertIn(".kmq.lock", proc.stderr)
            proc = kt.run("run", self.job, "--shard", "1/2")
            self.assertEqual(proc.returncode, 0, proc.stderr)
        finally:
            code, err = self.finish(first)
        self.assertEqual(code, 0, err)
        # The refused runs wrote nothing: the two shards of 2 did everything once.
        proc = kt.run("run", self.job, check_code=0)
        self.assertIn("0 done, 8 already done", proc.stderr)
        # Once the shards of 2 are gone, shards of 3 may use the root.
        proc = kt.run("run", self.job, "--shard", "1/3", check_code=0)
        self.assertIn("already done", proc.stderr)


class Signals(unittest.TestCase):
    def interrupt(self, sig):
        d = kt.fresh_dir(f"overnight_sig{sig}")
        copies = 2 if kt.SANITIZE else 4
        total = 4 * copies
        make_inputs(d, copies)
        out = os.path.join(d, "out")
        log = os.path.join(d, "run.log")
        job = kt.write_job(os.path.join(d, "job.ini"), """
[run]
output = out
[defaults]
k = 2, 3, 4, 6
restarts = 2
[job j]
input = in
""")
        proc = kt.start("run", job, "--threads", "2", "--log", log)

        def one_done():
            return os.path.exists(log) and ": ok," in read_text(log)

        wait_for(lambda: one_done() or proc.poll() is not None, what="the first image")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=600)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("interrupted", err)
        self.assertIn("run it again", err)
        run = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(run["status"], "interrupted")
        self.assertEqual(kt.temp_files(out), [])
        done = 0
        for name in sorted(os.listdir(os.path.join(out, "j"))):
            folder = os.path.join(out, "j", name)
            files = os.listdir(folder)
            if "summary.json" in files:
                s = kt.load_json(os.path.join(folder, "summary.json"))
                self.assertEqual(s["status"], "ok")
                done += 1
            else:
                self.assertEqual(files, [], name)  # the image in flight left nothing
        self.assertGreaterEqual(done, 1)
        self.assertLess(done, total)
        with open(log) as f:
            self.assertIn("interrupted", f.read())
        proc = kt.run("run", job, "--threads", "2")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(f"{total} images: {total - done} done, {done} already done, 0 failed",
                      proc.stderr)
        self.assertEqual(kt.load_json(os.path.join(out, "run.json"))["status"], "complete")

    def test_sigint(self):
        self.interrupt(signal.SIGINT)

    def test_sigterm(self):
        self.interrupt(signal.SIGTERM)


class Progress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("overnight_progress")
        cls.inp = os.path.join(cls.dir, "in")
        os.makedirs(cls.inp)
        for name in ("china.jpg", "coffee.png"):
            shutil.copy(os.path.join(kt.PHOTOS, name), cls.inp)
        with open(os.path.join(cls.inp, "broken.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n broken")
        cls.job = kt.write_job(os.path.join(cls.dir, "job.ini"), """
[run]
output = out
[defaults]
k = 2, 5
restarts = 1
[job j]
input = in
""")

    def test_live_line_on_a_terminal(self):
        master, slave = pty.openpty()
        proc = subprocess.Popen([kt.KMQ, "run", self.job, "--force", "--threads", "2"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        self.assertEqual(proc.wait(timeout=60), 1)
        text = b"".join(chunks).decode("utf-8", "replace")
        lines = text.replace("\r\n", "\n").split("\r\x1b[K")
        live = [l for l in lines if l.startswith("[")]
        self.assertTrue(live, text)
        pattern = re.compile(r"^\[(\d)/3\] \d+m\d\ds elapsed, ETA (--|\d+m\d\ds|\d+h\d\dm) \| "
                             r"\S*(china\.jpg|coffee\.png|broken\.png)( (histogram|fit|map))?"
                             r"( k=\d+)?")
        for line in live:
            self.assertRegex(line, pattern)
        self.assertTrue(any(re.search(r"china\.jpg fit k=5", l) for l in live), live)
        self.assertTrue(any(re.search(r"ETA \d+m\d\ds", l) for l in live), live)
        # The failure stays on screen as a plain line; the totals end it.
        self.assertRegex(text, TS + r" \[\d/3\] \S*broken\.png: FAILED \(")
        self.assertIn("kmq: 3 images: 2 done, 0 already done, 1 failed", text)

    def test_plain_lines_and_log(self):
        log = os.path.join(self.dir, "run.log")
        if os.path.exists(log):
            os.unlink(log)
        proc = kt.run("run", self.job, "--force", "--threads", "2", "--log", log)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertNotIn("\r", proc.stderr)
        self.assertNotIn("\x1b", proc.stderr)
        for text in (proc.stderr, read_text(log)):
            self.assertRegex(text, TS + r" \[\d/3\] \S*china\.jpg: ok, 2 k values, [\d.]+ s\n")
            self.assertRegex(text, TS + r" \[\d/3\] \S*broken\.png: FAILED \(\w+\) \S")
        with open(log) as f:
            self.assertRegex(f.read(), TS + r" run ended: 3 images, 2 done, 0 skipped, 1 failed\n")
        # --quiet silences stderr, not the log; the log is appended to.
        proc = kt.run("run", self.job, "--quiet", "--log", log)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr, "")
        with open(log) as f:
            text = f.read()
        self.assertEqual(text.count("run ended"), 2)
        self.assertRegex(text, TS + r" \[\d/3\] \S*china\.jpg: already done, skipped\n")


if __name__ == "__main__":
    unittest.main()
