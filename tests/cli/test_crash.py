"""Crash safety: `kmq run` killed with SIGKILL at many moments (from a seeded
generator, printed), re-run after each kill, ends byte-identical to an
uninterrupted run (JSON apart from timings), with no temporary file left.
After every kill no reader sees a partial file: every JSON parses, every PNG
is complete, every summary that says ok has all its files."""
import os
import random
import shutil
import signal
import time
import unittest

import kmqtest as kt

SEED = 20240601
KILLS = 10 if kt.SANITIZE else 14


def walk_files(root):
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            found[os.path.relpath(p, root)] = p
    return found


def png_complete(path):
    with open(path, "rb") as f:
        data = f.read()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(
        b"\x00\x00\x00\x00IEND\xaeB`\x82")


class KillAndResume(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("crash")
        inp = os.path.join(cls.dir, "in")
        os.makedirs(inp)
        for i in range(2 if kt.SANITIZE else 3):
            for name in kt.BUNDLED:
                shutil.copy(os.path.join(kt.PHOTOS, name), os.path.join(inp, f"{i}_{name}"))
        body = """
[run]
output = out
seed = 5
[defaults]
k = 2, 3, 5
restarts = 2
max_iter = 40
save = indexed, labels, palette
[job photos]
input = {inp}
"""
        cls.jobs = {}
        for name in ("ref", "killed"):
            os.makedirs(os.path.join(cls.dir, name))
            cls.jobs[name] = kt.write_job(os.path.join(cls.dir, name, "job.ini"),
                                          body.format(inp=inp))
        t0 = time.monotonic()
        kt.run("run", cls.jobs["ref"], "--threads", "2", check_code=0)
        cls.ref_seconds = time.monotonic() - t0

    def check_readable(self, out):
        """What a reader sees right after a kill: nothing partial."""
        for rel, path in walk_files(out).items():
            name = os.path.basename(rel)
            if name.startswith(".kmq-tmp."):
                continue  # a temporary name: no reader opens these
            if name.endswith(".json"):
                doc = kt.load_json(path)  # raises on a partial file
                if name == "summary.json":
                    self.assertEqual(doc["status"], "ok", rel)
                    folder = os.path.dirname(path)
                    for r in doc["results"]:
                        for kind in ("indexed", "labels"):
                            self.assertTrue(png_complete(
                                os.path.join(folder, r["files"][kind]["path"])), rel)
            elif name.endswith(".png"):
                self.assertTrue(png_complete(path), rel)

    def test_kill_resume_identical(self):
        out = os.path.join(self.dir, "killed", "out")
        rng = random.Random(SEED)
        # Kill moments spread over the batch: each run gets through about
        # 1/KILLS of the work before its kill, so the kills fall in every
        # phase (start-up, images, run.json) of successive resumed runs.
        span = max(0.3, 1.6 * self.ref_seconds / KILLS)
        kills, attempts, finished = [], 0, 0
        while len(kills) < KILLS and attempts < 4 * KILLS:
            attempts += 1
            delay = round(rng.uniform(0.02, span), 3)
            proc = kt.start("run", self.jobs["killed"], "--threads", "2")
            time.sleep(delay)
            alive = proc.poll() is None
            proc.send_signal(signal.SIGKILL) if alive else None
            proc.communicate(timeout=600)
            if alive:
                kills.append(delay)
            else:
                finished += 1
            print(f"attempt {attempts}: {'killed' if alive else 'finished before'} "
                  f"at {delay:.3f} s (exit {proc.returncode})", flush=True)
            self.check_readable(out)
        print(f"seed {SEED}: {len(kills)} kills at {kills}; {finished} runs finished first; "
              f"uninterrupted run {self.ref_seconds:.2f} s", flush=True)
        self.assertGreaterEqual(len(kills), 10)

        proc = kt.run("run", self.jobs["killed"], "--threads", "2")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        ref_out = os.path.join(self.dir, "ref", "out")
        ref, got = walk_files(ref_out), walk_files(out)
        self.assertEqual(kt.temp_files(out), [])
        self.assertEqual(sorted(got), sorted(ref))
        for rel, path in ref.items():
            with self.subTest(file=rel):
                if rel.endswith(".json"):
                    a, b = kt.load_json(path), kt.load_json(got[rel])
                    for doc in (a, b):
                        doc.pop("job_file", None)  # the two job files differ by folder
                    self.assertEqual(kt.strip_timings(b), kt.strip_timings(a))
                elif rel.endswith(".csv"):
                    self.assertEqual(kt.csv_rows_without_timings(got[rel]),
                                     kt.csv_rows_without_timings(path))
                elif rel.endswith(".html"):
                    continue  # shows timings; rebuilt from the summaries compared above
                else:
                    with open(path, "rb") as f1, open(got[rel], "rb") as f2:
                        self.assertTrue(f1.read() == f2.read(), rel)


class StaleTemporaries(unittest.TestCase):
    def test_done_image_folder_swept_on_resume(self):
        # A run killed while writing the report leaves a temporary of an
        # image's page in a folder whose image is done; the next run skips
        # the image and must still remove it.
        d = kt.fresh_dir("crash-stale-page")
        inp = os.path.join(d, "in")
        os.makedirs(inp)
        shutil.copy(os.path.join(kt.PHOTOS, "coffee.png"), inp)
        job = kt.write_job(os.path.join(d, "job.ini"),
                           f"[run]\noutput = out\n[defaults]\nk = 2\n[job photos]\ninput = {inp}\n")
        kt.run("run", job, check_code=0)
        out = os.path.join(d, "out")
        stale = os.path.join(out, "photos", "coffee.png", ".kmq-tmp.index.html.0123456789abcdef")
        with open(stale, "w") as f:
            f.write("<html>half")
        proc = kt.run("run", job, check_code=0)
        self.assertIn("1 already done", proc.stdout + proc.stderr)
        self.assertEqual(kt.temp_files(out), [])


if __name__ == "__main__":
    unittest.main()
