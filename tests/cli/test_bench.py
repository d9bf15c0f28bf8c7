"""kmq bench: the thread-scaling study runs every thread count, checks that
all of them give identical results, and writes JSON and an SVG plot."""
import json
import math
import os
import unittest
import xml.etree.ElementTree as ET

import kmqtest as kt


def bench_coffee(name, k, restarts, repeat):
    """kmq bench on coffee.png at 1..3 threads: (process, JSON, folder)."""
    d = kt.fresh_dir(name)
    out = os.path.join(d, "b.json")
    proc = kt.run("bench", "--image", os.path.join(kt.PHOTOS, "coffee.png"), "--k", k,
                  "--restarts", str(restarts), "--threads-max", "3", "--repeat", str(repeat),
                  "--json", out, check_code=0)
    with open(out) as f:
        return proc, json.load(f), d


class Bench(unittest.TestCase):
    def test_scaling_study(self):
        proc, doc, d = bench_coffee("bench", "4,16", 1, 3)
        self.assertIn("identical", proc.stdout + proc.stderr)
        # the colours are prepared once per thread count, timed apart
        self.assertEqual([p["threads"] for p in doc["prepare_s"]],
                         [t["threads"] for t in doc["results"][0]["threads"]])
        self.assertTrue(all(p["s"] > 0 for p in doc["prepare_s"]))
        self.assertTrue(doc["identical_across_threads"])
        self.assertEqual(doc["unique_colors"], 94478)
        self.assertEqual([r["k"] for r in doc["results"]], [4, 16])
        for r in doc["results"]:
            threads = [t["threads"] for t in r["threads"]]
            self.assertEqual(threads, [1, 2, 3])
            # one restart: nothing to run side by side
            self.assertEqual([t["runs"] for t in r["threads"]], ["serial", "split", "split"])
            self.assertTrue(all(t["identical"] for t in r["threads"]))
            self.assertEqual(r["threads"][0]["speedup"], 1.0)
            for t in r["threads"]:
                self.assertGreater(t["fit_s"], 0)
                # every run's time is kept; the summary numbers come from them
                runs = t["fit_runs_s"]
                self.assertEqual(len(runs), 3)
                self.assertAlmostEqual(t["fit_s"], sorted(runs)[1], places=6)
                self.assertAlmostEqual(t["fit_min_s"], min(runs), places=6)
                self.assertAlmostEqual(t["fit_max_s"], max(runs), places=6)
                self.assertAlmostEqual(t["efficiency"], t["speedup"] / t["threads"], places=3)
                # k-means++ takes some of each run's time, Lloyd the rest
                self.assertGreater(t["init_share"], 0)
                self.assertLess(t["init_share"], 1)
                self.assertGreater(t["init_s"], 0)
                self.assertGreater(t["lloyd_s"], 0)
                if t["threads"] == 1:
                    # each run's phases lie within its fit, so the sum of
                    # the two medians is at most the slowest fit (two
                    # majorities of the runs share a run)
                    self.assertLessEqual(t["init_s"] + t["lloyd_s"], t["fit_max_s"] * 1.0001)
            self.assertGreater(r["distance_evals"], 0)
            self.assertAlmostEqual(r["mse"], r["inertia"] / doc["pixels"], places=6)
            # brute force's counts, from the definitions: k-means++ draws
            # 2 + floor(ln k) candidates a centre; Lloyd runs iterations + 1
            # passes per restart (one restart here)
            n, k = doc["unique_colors"], r["k"]
            trials = 2 + int(math.floor(math.log(k)))
            self.assertEqual(r["brute_init_evals"], n * (1 + (k - 1) * (trials + 1)))
            self.assertEqual(r["brute_lloyd_evals"], (r["iterations_total"] + 1) * k * n)
            self.assertEqual(r["init_evals"] + r["lloyd_evals"], r["distance_evals"])
            for phase in ("init", "lloyd"):
                self.assertAlmostEqual(r[phase + "_avoided"],
                                       1 - r[phase + "_evals"] / r["brute_%s_evals" % phase],
                                       places=5)
                # the pruning avoids most of brute force's work on a photo
                self.assertGreater(r[phase + "_avoided"], 0.5)
                self.assertLess(r[phase + "_avoided"], 1)
        # the table of avoided work names both phases for every k
        self.assertEqual(len([l for l in proc.stdout.splitlines() if "avoided" not in l
                              and ("k-means++" in l or "Lloyd" in l)]), 4)
        root = ET.parse(os.path.join(d, "b.svg")).getroot()
        self.assertTrue(root.tag.endswith("svg"))

    def test_runs_side_by_side_on_two_threads(self):
        # 2 restarts fill 2 threads, so they run side by side; on 3 threads
        # each restart is split across them (README, Parallelism)
        proc, doc, _ = bench_coffee("bench_runs", "4", 2, 1)
        rows = doc["results"][0]["threads"]
        self.assertEqual([t["runs"] for t in rows], ["serial", "side_by_side", "split"])
        self.assertTrue(all(t["identical"] for t in rows))
        lines = [l.split() for l in proc.stdout.splitlines()]
        self.assertEqual([l[-1] for l in lines if len(l) == 10 and l[0] == "4"],
                         ["serial", "side_by_side", "split"])

    def test_bad_option(self):
        self.assertEqual(kt.run("bench", "--frobnicate").returncode, 2)
        self.assertEqual(kt.run("bench", "--k", "0").returncode, 2)


if __name__ == "__main__":
    unittest.main()
