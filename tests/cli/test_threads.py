"""Same job and seed at different thread counts: byte-identical PNGs and
identical numbers in every summary.json (docs/design.md)."""
import os
import unittest

import kmqtest as kt


def tree(root):
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            files[os.path.relpath(p, root)] = p
    return files


class ThreadInvariance(unittest.TestCase):
    def test_threads_1_2_3_identical(self):
        base = kt.fresh_dir("threads")
        # 4 restarts run side by side on 2 threads and split on 3 (README,
        # Parallelism); k values on both sides of the bounds threshold, and
        # a sample run.
        job = kt.write_job(os.path.join(base, "job.ini"), f"""
[run]
output = out
seed = 11
[defaults]
k = 2, 16, 64
restarts = 4
save = indexed, labels
[job photos]
input = {kt.PHOTOS}/china.jpg, {kt.PHOTOS}/chelsea_alpha.png
[job sampled]
input = {kt.PHOTOS}/coffee.png
sample = 20000
k = 8, 256
""")
        outs = []
        for threads in ("1", "2", "3"):
            out = os.path.join(base, "out")
            kt.run("run", job, "--threads", threads, "--force", "--quiet", check_code=0)
            dest = os.path.join(base, "t" + threads)
            os.rename(out, dest)
            outs.append(dest)
        ref = tree(outs[0])
        self.assertTrue(any(p.endswith("k256.png") for p in ref))
        for other in outs[1:]:
            files = tree(other)
            self.assertEqual(sorted(ref), sorted(files))
            for rel, path in ref.items():
                if rel.endswith(".png"):
                    with open(path, "rb") as a, open(files[rel], "rb") as b:
                        self.assertEqual(a.read(), b.read(), rel)
                elif rel.endswith(".json"):
                    self.assertEqual(kt.strip_timings(kt.load_json(path)),
                                     kt.strip_timings(kt.load_json(files[rel])), rel)


if __name__ == "__main__":
    unittest.main()
