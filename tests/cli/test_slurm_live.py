"""A live single-node SLURM runs one job file as a job array.

The test starts its own cluster on this machine, everything in a temporary
folder: a munge key and munged (its own socket), slurmctld and slurmd with
a minimal slurm.conf (proctrack/linuxproc, task/none, select/cons_tres, no
accounting) on free ports. It submits a 4-task array over the bundled
photos with scripts/slurm/kmq-array.sh (held), cancels one task before it
runs (scancel JOB_I), releases the rest, and checks that the dependent
report task failed and `kmq report` lists the shard as missing with the
line that re-runs it; it runs that line, and then checks `kmq report` shows
a complete run identical to a single-process run of the same job (every
summary's numbers, every PNG's bytes and elbow.csv, timings aside). A
second array shows that cancelling a running task stops kmq cleanly: its
record says "interrupted", no temporary file is left, and `kmq report`
names it. Every daemon is stopped at the end, also on failure.

It is skipped, saying why, where SLURM or munge is not installed, the test
does not run as root (slurmd must), or the daemons do not start.
"""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import unittest

import kmqtest as kt

SUBMIT = os.path.join(kt.SOURCE, "scripts", "slurm", "kmq-array.sh")
WAIT_S = 600  # the longest any one wait may take on a loaded machine


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """munged + slurmctld + slurmd, all state, logs and pids under root."""

    def __init__(self, root):
        self.root = root
        self.procs = []
        self.conf = os.path.join(root, "slurm.conf")
        self.socket = os.path.join(root, "munge", "munge.socket")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for k in list(self.env):
            if k.startswith("SLURM_") and k != "SLURM_CONF":
                del self.env[k]

    def log_tail(self):
        text = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = os.path.join(self.root, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text.append(f"--- {name}\n" + "".join(f.readlines()[-15:]))
        return "\n".join(text)

    def spawn(self, *argv):
        log = open(os.path.join(self.root, os.path.basename(argv[0]) + ".out"), "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start(self):
        for tool in ("munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "squeue",
                     "scontrol", "scancel", "sinfo"):
            if not shutil.which(tool, path=os.environ["PATH"] + ":/usr/sbin"):
                raise unittest.SkipTest(f"{tool} not installed (scripts/setup.sh installs "
                                        "slurm-wlm and munge)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("a live SLURM needs root here (slurmd runs jobs as their "
                                    "user)")
        munge_dir = os.path.join(self.root, "munge")
        os.makedirs(munge_dir, mode=0o700)
        key = os.path.join(munge_dir, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.spawn("/usr/sbin/munged", "--foreground", "--force", f"--key-file={key}",
                   f"--socket={self.socket}", f"--pid-file={munge_dir}/munged.pid",
                   f"--log-file={self.root}/munged.log", f"--seed-file={munge_dir}/seed")
        self.wait_for(lambda: self.quiet(["sh", "-c", f"munge -S {self.socket} -n | "
                                                      f"unmunge -S {self.socket}"]),
                      60, "munged did not answer")
        node = socket.gethostname().split(".")[0]
        for d in ("state", "spool"):
            os.makedirs(os.path.join(self.root, d))
        cpus = os.cpu_count() or 1
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=kmqtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={self.socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
KillWait=10
MinJobAge=3600
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool
SlurmctldPidFile={self.root}/slurmctld.pid
SlurmdPidFile={self.root}/slurmd.pid
SlurmctldLogFile={self.root}/slurmctld.log
SlurmdLogFile={self.root}/slurmd.log
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        self.spawn("/usr/sbin/slurmctld", "-D", "-c", "-i", "-f", self.conf)
        self.wait_for(lambda: self.quiet(["scontrol", "ping"], want="UP"), 90,
                      "slurmctld did not come up")
        self.spawn("/usr/sbin/slurmd", "-D", "-N", node, "-f", self.conf)
        self.wait_for(lambda: self.quiet(["sinfo", "-h", "-o", "%t"], want="idle"), 120,
                      "slurmd did not register as idle")

    def quiet(self, argv, want=None):
        for p in self.procs:
            if p.poll() is not None:
                raise unittest.SkipTest(f"{p.args[0]} exited {p.returncode}:\n{self.log_tail()}")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=30)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0 and (want is None or want in proc.stdout)

    def wait_for(self, ok, seconds, what):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ok():
                return
            time.sleep(0.5)
        raise unittest.SkipTest(f"{what} within {seconds} s:\n{self.log_tail()}")

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
        self.procs = []

    def slurm(self, *argv):
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def job_state(self, job_id):
        """{JobState, ExitCode} of a job (array tasks: the first record)."""
        out = self.slurm("scontrol", "-o", "show", "job", str(job_id))
        fields = dict(re.findall(r"(\w+)=(\S*)", out.splitlines()[0]))
        return fields.get("JobState"), fields.get("ExitCode")

    def wait_gone(self, job_id, seconds=WAIT_S):
        """Waits until no task of job_id is pending or running."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            out = self.slurm("squeue", "-h", "-j", str(job_id), "-o", "%i %T")
            if not out.strip():
                return
            time.sleep(1)
        raise AssertionError(f"job {job_id} still queued after {seconds} s:\n"
                             f"{self.slurm('squeue')}\n{self.log_tail()}")


def comparable_tree(out):
    """{relative path: comparable content} of every summary and PNG."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, out)
            if name == "summary.json":
                found[rel] = kt.strip_timings(kt.load_json(path))
            elif name.endswith(".png"):
                with open(path, "rb") as f:
                    found[rel] = f.read()
    return found


class LiveSlurm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()
        # a short path: munge's socket name must fit in sun_path
        cls.root = kt.fresh_dir("slurm_live")
        cls.cluster = Cluster(os.path.join(cls.root, "c"))
        os.makedirs(cls.cluster.root)
        try:
            cls.cluster.start()
        except BaseException:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        print(f"live SLURM test: {time.monotonic() - cls.t0:.1f} s")

    def write_job(self, name):
        return kt.write_job(os.path.join(self.root, name + ".ini"),
                            f"[run]\noutput = {name}\nseed = 7\n[defaults]\nk = 2, 5\n"
                            f"restarts = 2\n[job photos]\ninput = {kt.PHOTOS}\n")

    def test_array_cancel_resubmit_merge(self):
        c = self.cluster
        job = self.write_job("out")
        out = os.path.join(self.root, "out")
        # the shard to cancel: one that holds an image
        counts = []
        for i in range(4):
            proc = kt.run("run", job, "--shard", f"{i}/4", "--dry-run", check_code=0)
            counts.append(int(proc.stderr.split()[1]))
        victim = counts.index(max(counts))

        env = dict(c.env, KMQ=kt.KMQ)
        proc = subprocess.run(["bash", SUBMIT, "--hold", "--cpus", "1", job, "4"],
                              capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        array_id = re.search(r"array (\d+)", proc.stdout).group(1)
        report_id = re.search(r"report task (\d+)", proc.stdout).group(1)

        c.slurm("scancel", f"{array_id}_{victim}")
        c.slurm("scontrol", "release", array_id)
        c.wait_gone(array_id)
        c.wait_gone(report_id)
        # the report task ran after the array and failed: a shard is missing
        state, code = c.job_state(report_id)
        self.assertEqual(state, "FAILED", (state, code))
        self.assertEqual(code, "1:0")
        logs = out + ".logs"
        report_log = [n for n in os.listdir(logs) if n.startswith("report.")]
        self.assertEqual(len(report_log), 1, os.listdir(logs))
        with open(os.path.join(logs, report_log[0])) as f:
            self.assertIn(f"shard {victim} of 4 never ran", f.read())
        # one log per task that ran, none for the cancelled one
        task_logs = sorted(n for n in os.listdir(logs) if n.startswith("shard-"))
        self.assertEqual(len(task_logs), 3, task_logs)
        self.assertFalse(any(n.startswith(f"shard-{victim}-of-4.") for n in task_logs))

        proc = kt.run("report", out)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"shard {victim} of 4 never ran", proc.stderr)
        rerun = proc.stdout.strip().splitlines()[-1].strip()
        self.assertTrue(rerun.startswith(f"sbatch --array={victim} "), proc.stdout)
        doc = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(doc["status"], "incomplete")
        self.assertEqual([m["shard"] for m in doc["shards"]["missing"]], [victim])
        self.assertEqual(doc["totals"]["not_done"], counts[victim])
        pending = sorted(im["rel"] for im in doc["images"] if im["status"] == "pending")
        self.assertEqual(len(pending), counts[victim])

        # the printed line, as a user would paste it, re-runs that shard alone
        argv = shlex.split(rerun)
        proc = subprocess.run(argv[:1] + ["--parsable"] + argv[1:], capture_output=True,
                              text=True, env=c.env, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        again = proc.stdout.strip().split(";")[0]
        c.wait_gone(again)
        self.assertEqual(c.job_state(again), ("COMPLETED", "0:0"))
        proc = kt.run("report", out)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        doc = kt.load_json(os.path.join(out, "run.json"))
        self.assertEqual(doc["status"], "complete")
        self.assertEqual(doc["shards"]["missing"], [])

        # identical to one process running the whole job
        single = self.write_job("single")
        kt.run("run", single, "--quiet", "--threads", "2", check_code=0)
        one = kt.load_json(os.path.join(self.root, "single", "run.json"))
        self.assertEqual([kt.strip_timings(im) for im in doc["images"]],
                         [kt.strip_timings(im) for im in one["images"]])
        ours, theirs = comparable_tree(out), comparable_tree(os.path.join(self.root, "single"))
        self.assertEqual(sorted(ours), sorted(theirs))
        self.assertGreater(len(ours), 4)
        for rel in ours:
            self.assertEqual(ours[rel], theirs[rel], rel)

        self.assertEqual(kt.csv_rows_without_timings(os.path.join(out, "elbow.csv")),
                         kt.csv_rows_without_timings(
                             os.path.join(self.root, "single", "elbow.csv")))

    def test_cancelling_a_running_task_stops_kmq_cleanly(self):
        c = self.cluster
        job = kt.write_job(os.path.join(self.root, "slow.ini"),
                           f"[run]\noutput = slow\n[defaults]\nk = 2-64\nrestarts = 50\n"
                           f"[job photos]\ninput = {kt.PHOTOS}\n")
        out = os.path.join(self.root, "slow")
        env = dict(c.env, KMQ=kt.KMQ)
        proc = subprocess.run(["bash", SUBMIT, "--no-report", job, "2"], capture_output=True,
                              text=True, env=env, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        array_id = re.search(r"array (\d+)", proc.stdout).group(1)
        record = os.path.join(out, ".kmq-shards", "shard-0-of-2.json")
        deadline = time.monotonic() + WAIT_S
        while not os.path.exists(record) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertTrue(os.path.exists(record), c.slurm("squeue"))
        c.slurm("scancel", f"{array_id}_0")
        c.wait_gone(f"{array_id}_0")
        with open(record) as f:
            self.assertEqual(json.load(f)["status"], "interrupted")
        self.assertEqual(kt.temp_files(out), [])
        c.slurm("scancel", array_id)
        c.wait_gone(array_id)
        proc = kt.run("report", out)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertRegex(proc.stderr, r"shard 0 of 2 interrupted on \S+ at ")
        self.assertIn("sbatch --array=0", proc.stdout)


if __name__ == "__main__":
    unittest.main()
