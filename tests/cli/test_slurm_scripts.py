"""The SLURM scripts without SLURM, and job arrays of kmq run --shard.

scripts/slurm/kmq-array.sh runs against stand-in sbatch and sinfo commands
that record their arguments; scripts/slurm/kmq-array.sbatch runs with the
SLURM_* variables a task would have and a stand-in kmq. Then real shard
runs: 52 small images over N = 3, one shard left out, and what `kmq report`
says about it (tests/cli/test_slurm_live.py does the same under a live
SLURM).
"""
import json
import os
import shutil
import signal
import stat
import subprocess
import unittest

from PIL import Image

import kmqtest as kt

SCRIPTS = os.path.join(kt.SOURCE, "scripts", "slurm")
SUBMIT = os.path.join(SCRIPTS, "kmq-array.sh")
BATCH = os.path.join(SCRIPTS, "kmq-array.sbatch")


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


class SubmitScript(unittest.TestCase):
    def setUp(self):
        self.dir = kt.fresh_dir("slurm_scripts")
        self.bin = os.path.join(self.dir, "bin")
        os.makedirs(self.bin)
        self.calls = os.path.join(self.dir, "calls.jsonl")
        # sbatch: records argv and KMQ_RESUBMIT, answers a job id as --parsable does
        write_exe(os.path.join(self.bin, "sbatch"), f"""#!/usr/bin/python3
import json, os, sys
with open({self.calls!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "resubmit": os.environ.get("KMQ_RESUBMIT")}}) + "\\n")
n = sum(1 for _ in open({self.calls!r}))
print(f"{{100 + n}};cluster" if "--parsable" in sys.argv else f"Submitted batch job {{100 + n}}")
""")
        # sinfo: nodes of 2 and 4 CPUs; partition "small" has only the 2-CPU one
        write_exe(os.path.join(self.bin, "sinfo"),
                  '#!/bin/sh\ncase "$*" in *"-p small"*) echo 2 ;; *) echo 2; echo 4+ ;; esac\n')
        self.job = kt.write_job(os.path.join(self.dir, "job.ini"),
                                f"[run]\noutput = out\n[defaults]\nk = 2\n[job p]\ninput = {kt.PHOTOS}\n")

    def submit(self, *args):
        env = dict(os.environ, PATH=self.bin + ":" + os.environ["PATH"], KMQ=kt.KMQ)
        proc = subprocess.run(["bash", SUBMIT, *args], capture_output=True, text=True, env=env,
                              timeout=60)
        calls = []
        if os.path.exists(self.calls):
            with open(self.calls) as f:
                calls = [json.loads(line) for line in f]
        return proc, calls

    def option(self, argv, name):
        hits = [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
        return hits[0] if hits else None

    def test_array_of_n_then_a_dependent_report(self):
        proc, calls = self.submit("--cpus", "2", self.job, "4", "--time=5", "--partition=debug")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(calls), 2)
        array, report = calls[0]["argv"], calls[1]["argv"]
        self.assertIn("--parsable", array)
        self.assertEqual(self.option(array, "--array"), "0-3")
        self.assertEqual(self.option(array, "--cpus-per-task"), "2")
        self.assertEqual(array[-3:-1], [self.job, "4"])
        self.assertTrue(array[-4].endswith("kmq-array.sbatch"))
        self.assertIn("--time=5", array)
        self.assertIn("--time=5", report)
        self.assertIn("--parsable", report)
        self.assertEqual(self.option(report, "--dependency"), "afterany:101")
        self.assertIsNone(self.option(report, "--array"))
        self.assertIn(" report ", report[report.index("--wrap") + 1])
        self.assertIn("101", proc.stdout)
        self.assertIn("102", proc.stdout)
        # one log per task, beside the output root, named by shard and N
        log = self.option(array, "--output")
        self.assertTrue(log.endswith("out.logs/shard-%a-of-4.%A.log"), log)
        # the line each shard records for re-running: the same without --array
        resubmit = calls[0]["resubmit"]
        self.assertTrue(resubmit.startswith("sbatch --cpus-per-task=2 "), resubmit)
        self.assertNotIn("--array", resubmit)
        self.assertIn("--time=5", resubmit)

    def test_a_subset_with_start_step_and_throttle_is_each_its_shard(self):
        for spec in ("1-3", "0-6:2", "3", "1,5-6%2"):
            os.path.exists(self.calls) and os.remove(self.calls)
            proc, calls = self.submit("--array", spec, self.job, "7", "--no-report")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(len(calls), 1)
            self.assertEqual(self.option(calls[0]["argv"], "--array"), spec)
            # N stays 7 whatever the array's shape
            self.assertEqual(calls[0]["argv"][-2], "7")

    def test_indices_beyond_n_are_refused(self):
        for spec, bad in (("1-4", "4"), ("0-14:2", "4"), ("0,9", "9")):
            proc, calls = self.submit("--array", spec, self.job, "4")
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn(f"index {bad}", proc.stderr)
            self.assertIn("only 4 shards", proc.stderr)
            self.assertEqual(calls, [])

    def test_malformed_lists_and_sbatch_array_options_are_refused(self):
        for args in (["--array", "3-1", self.job, "4"], ["--array", "a", self.job, "4"],
                     ["--array", "0-3%0", self.job, "4"], [self.job, "4", "--", "--array=0-3"],
                     [self.job, "4", "-a", "0-3"], [self.job, "0"], [self.job, "4", "extra"]):
            proc, calls = self.submit(*args)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertIn("kmq-array.sh:", proc.stderr)
            self.assertEqual(calls, [])

    def test_more_cpus_than_any_node_is_refused(self):
        proc, calls = self.submit("--cpus", "5", self.job, "4")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("largest node has 4 CPUs", proc.stderr)
        self.assertEqual(calls, [])
        proc, calls = self.submit("--cpus", "4", self.job, "4")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for opts in (["--partition=small"], ["-p", "small"], ["-psmall"]):
            proc, calls = self.submit("--cpus", "4", self.job, "4", "--", *opts)
            self.assertEqual(proc.returncode, 2, (opts, proc.stderr))
            self.assertIn("of partition small has 2 CPUs", proc.stderr)

    def test_options_without_n_use_the_default(self):
        proc, calls = self.submit(self.job, "--time=5")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.option(calls[0]["argv"], "--array"), "0-15")


class BatchScript(unittest.TestCase):
    def setUp(self):
        self.dir = kt.fresh_dir("slurm_batch")
        self.fake = os.path.join(self.dir, "kmq")
        write_exe(self.fake, "#!/bin/sh\necho \"ARGS $*\"\necho \"OMP=${OMP_NUM_THREADS:-}\"\n")

    def task(self, index, n, cpus=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        if index is not None:
            env["SLURM_ARRAY_TASK_ID"] = str(index)
        # what a re-submitted single task sees: the array's shape says nothing of N
        env["SLURM_ARRAY_TASK_COUNT"] = "1"
        env["SLURM_ARRAY_TASK_MIN"] = env["SLURM_ARRAY_TASK_MAX"] = str(index)
        if cpus:
            env["SLURM_CPUS_PER_TASK"] = str(cpus)
        return subprocess.run(["bash", BATCH, "/jobs/job.ini", str(n), self.fake],
                              capture_output=True, text=True, env=env, timeout=60)

    def test_the_shard_is_the_index_of_n_and_threads_come_from_slurm(self):
        proc = self.task(3, 4, cpus=3)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("ARGS run /jobs/job.ini --shard 3/4 --threads 3", proc.stdout)

    def test_without_cpus_per_task_one_thread(self):
        proc = self.task(0, 4)
        self.assertIn("--shard 0/4 --threads 1", proc.stdout)

    def test_an_index_beyond_n_is_refused(self):
        proc = self.task(4, 4)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("array index 4 is not a shard of 4", proc.stderr)
        self.assertNotIn("ARGS", proc.stdout)

    def test_outside_an_array_it_is_refused(self):
        proc = self.task(None, 4)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("not an array task", proc.stderr)


NOLOCK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
/* fcntl record locks fail as on NFS without its lock daemon. */
static int shim(const char *name, int fd, int cmd, void *arg)
{
    if (cmd == F_SETLK || cmd == F_SETLKW || cmd == F_GETLK) {
        errno = ENOLCK;
        return -1;
    }
    int (*real)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, name);
    return real(fd, cmd, arg);
}
int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return shim("fcntl", fd, cmd, arg);
}
int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return shim("fcntl64", fd, cmd, arg);
}
"""


class NoLocks(unittest.TestCase):
    """A file system without fcntl locks is named as such, not as "in use"."""

    @unittest.skipIf(kt.SANITIZE, "the sanitizer runtime must come first; LD_PRELOAD cannot")
    @unittest.skipUnless(shutil.which("cc"), "no C compiler for the fcntl shim")
    def test_enolck_is_named(self):
        d = kt.fresh_dir("nolocks")
        src, lib = os.path.join(d, "shim.c"), os.path.join(d, "shim.so")
        with open(src, "w") as f:
            f.write(NOLOCK_SHIM)
        subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, src, "-ldl"], check=True)
        job = kt.write_job(os.path.join(d, "job.ini"),
                           f"[run]\noutput = out\n[defaults]\nk = 2\n[job p]\ninput = {kt.PHOTOS}\n")
        for shard in ([], ["--shard", "1/3"]):
            proc = kt.run("run", job, "--quiet", *shard, env=dict(os.environ, LD_PRELOAD=lib))
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn("No locks available", proc.stderr)
            self.assertIn("lockd", proc.stderr)
            self.assertNotIn("in use", proc.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "out", "run.json")))


class ShardRuns(unittest.TestCase):
    """Real shard runs over 52 small images."""

    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("shard_runs")
        cls.images = os.path.join(cls.dir, "images")
        os.makedirs(cls.images)
        for i in range(52):
            img = Image.new("RGB", (6, 5), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256))
            img.putpixel((1, 1), (255 - i, i, 128))
            img.save(os.path.join(cls.images, f"img{i:02d}.png"))

    def job(self, name):
        return kt.write_job(os.path.join(self.dir, name + ".ini"),
                            f"[run]\noutput = {name}\n[defaults]\nk = 2\nrestarts = 1\n"
                            f"[job p]\ninput = images\n")

    def test_missing_shard_is_reported_then_completed(self):
        job = self.job("out3")
        out = os.path.join(self.dir, "out3")
        env = dict(os.environ, KMQ_RESUBMIT="sbatch --cpus-per-task=1 /s/kmq-array.sbatch /j.ini 3")
        for i in (0, 2):
            kt.run("run", job, "--shard", f"{i}/3", "--quiet", check_code=0, env=env)
        owners = {}
        for i in range(3):
            proc = kt.run("run", job, "--shard", f"{i}/3", "--dry-run")
            self.assertIn("to process", proc.stderr)
        # every image done so far belongs to shard 0 or 2; shard 1's are missing
        proc = kt.run("report", out)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("shard 1 of 3 never ran", proc.stderr)
        self.assertIn("sbatch --array=1 --cpus-per-task=1 /s/kmq-array.sbatch /j.ini 3",
                      proc.stdout)
        doc = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(doc["status"], "incomplete")
        self.assertEqual(doc["shards"]["count"], 3)
        self.assertEqual([m["shard"] for m in doc["shards"]["missing"]], [1])
        pending = [im["rel"] for im in doc["images"] if im["status"] == "pending"]
        self.assertEqual(doc["totals"]["images"], 52)
        self.assertGreater(len(pending), 0)
        html = open(os.path.join(out, "index.html"), encoding="utf-8").read()
        self.assertIn("incomplete", html)
        self.assertIn("shard 1: never ran", html)
        self.assertIn("sbatch --array=1 --cpus-per-task=1 /s/kmq-array.sbatch /j.ini 3", html)
        # shard 1 then runs alone: complete, identical to a single process
        kt.run("run", job, "--shard", "1/3", "--quiet", check_code=0, env=env)
        proc = kt.run("report", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        doc = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(doc["status"], "complete")
        self.assertEqual(doc["shards"]["missing"], [])
        self.assertIsNone(doc["shards"]["rerun"])
        for rel in pending:
            self.assertTrue(os.path.exists(os.path.join(out, "p", rel, "summary.json")))
        single = self.job("single")
        kt.run("run", single, "--quiet", check_code=0)
        one = kt.load_json(os.path.join(self.dir, "single", "run.json"))
        strip = lambda d: [kt.strip_timings(im) for im in d["images"]]
        self.assertEqual(strip(doc), strip(one))

    def test_every_image_in_exactly_one_shard(self):
        for n in (1, 2, 5, 7):
            job = self.job(f"cover{n}")
            counts = []
            for i in range(n):
                proc = kt.run("run", job, "--shard", f"{i}/{n}", "--dry-run", check_code=0)
                counts.append(int(proc.stderr.split()[1]))
            self.assertEqual(sum(counts), 52, (n, counts))

    def test_shards_of_another_n_are_refused_while_one_runs(self):
        job = self.job("othern")
        # a shard holding its lock: stopped before its first image
        proc = kt.start("run", job, "--shard", "0/2", "--threads", "1")
        try:
            out = os.path.join(self.dir, "othern", ".kmq-shards")
            for _ in range(600):
                if os.path.isdir(out) and os.listdir(out):
                    break
                subprocess.run(["sleep", "0.05"])
            other = kt.run("run", job, "--shard", "1/3", "--quiet")
            if proc.poll() is None:
                self.assertEqual(other.returncode, 2, other.stderr)
                self.assertIn("N = 2", other.stderr)
        finally:
            proc.wait(timeout=600)

    def wait_for_record(self, root, name):
        path = os.path.join(root, ".kmq-shards", name)
        for _ in range(1200):
            if os.path.exists(path):
                return path
            subprocess.run(["sleep", "0.05"])
        self.fail(f"{path} never appeared")

    def test_interrupted_and_killed_shards_are_missing(self):
        job = kt.write_job(os.path.join(self.dir, "stopped.ini"),
                           f"[run]\noutput = stopped\n[defaults]\nk = 2-60\nrestarts = 20\n"
                           f"[job p]\ninput = {kt.PHOTOS}\n")
        out = os.path.join(self.dir, "stopped")
        for sig, code, why in ((signal.SIGTERM, 130, "interrupted on"),
                               (signal.SIGKILL, -9, "and stopped without finishing")):
            proc = kt.start("run", job, "--shard", "0/1", "--threads", "1")
            self.wait_for_record(out, "shard-0-of-1.json")
            # while it runs, the report says so and does not call it missing
            rep = kt.run("report", out)
            if proc.poll() is None:
                self.assertIn("shard 0 of 1 is running now", rep.stderr)
                self.assertNotIn("re-run", rep.stdout)
            proc.send_signal(sig)
            proc.communicate(timeout=600)
            self.assertEqual(proc.returncode, code)
            rep = kt.run("report", out)
            self.assertEqual(rep.returncode, 1, rep.stderr)
            self.assertRegex(rep.stderr, f"shard 0 of 1 (started on .* )?{why}")
            self.assertIn("--shard $i/1; done", rep.stdout)
            doc = kt.load_json(os.path.join(out, "run.json"))
            self.assertEqual([m["shard"] for m in doc["shards"]["missing"]], [0])
            self.assertNotEqual(doc["status"], "complete")
            shutil.rmtree(os.path.join(out, ".kmq-shards"))

    def test_report_with_the_job_file_lists_missing_images(self):
        job = self.job("given")
        out = os.path.join(self.dir, "given")
        kt.run("run", job, "--quiet", check_code=0)
        proc = kt.run("report", out, "--job", job)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        gone = os.path.join(out, "p", "img07.png", "summary.json")
        os.remove(gone)
        # without the job file the report cannot know the image should be there
        self.assertEqual(kt.run("report", out).returncode, 0)
        proc = kt.run("report", out, "--job", job)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("52 images, 51 ok, 0 failed, 1 missing", proc.stderr)
        doc = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(doc["status"], "incomplete")
        self.assertNotIn("shards", doc)
        self.assertEqual([im["rel"] for im in doc["images"] if im["status"] == "pending"],
                         ["img07.png"])

    def test_a_plain_run_forgets_the_shard_records(self):
        job = self.job("plain")
        kt.run("run", job, "--shard", "0/2", "--quiet", check_code=0)
        self.assertTrue(os.listdir(os.path.join(self.dir, "plain", ".kmq-shards")))
        kt.run("run", job, "--quiet", check_code=0)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "plain", ".kmq-shards")))
        proc = kt.run("report", os.path.join(self.dir, "plain"))
        self.assertEqual(proc.returncode, 0, proc.stderr)


if __name__ == "__main__":
    unittest.main()
