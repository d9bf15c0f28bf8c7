#!/usr/bin/python3
"""kmq.KMeans against scikit-learn's KMeans(n_init=10), both from Python, on
the same pixels (data/photos/china.jpg, every pixel, nothing subsampled).

For each k and seed the two fits run side by side, in alternating order (the
machine may be shared and noisy: the ratios of neighbouring runs are what to
quote), both with default tol (1e-4, the same stopping rule), max_iter 300,
10 runs each and all cores. mse = inertia / pixels, summed over the three
channels (kmq's convention), each from its own inertia_. Reports per k the
median over seeds of the mse ratio kmq / scikit-learn and of the time ratio
scikit-learn / kmq, and writes JSON.

  KMQ_LIBRARY=build/libkmq.so /usr/bin/python3 bench/python_vs_sklearn.py \
      [--k 16,64] [--seeds 3] [--json bench/results/python_vs_sklearn.json]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import kmq  # noqa: E402
from sklearn.cluster import KMeans as SkKMeans  # noqa: E402
import sklearn  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default=os.path.join(HERE, "..", "data", "photos", "china.jpg"))
    ap.add_argument("--k", default="16,64")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "python_vs_sklearn.json"))
    args = ap.parse_args()

    img = np.asarray(Image.open(args.image).convert("RGB"))
    X = img.reshape(-1, 3).astype(np.float64)  # scikit-learn's input, made once, not timed
    n = X.shape[0]
    rows = []
    for k in [int(v) for v in args.k.split(",")]:
        for seed in range(args.seeds):
            def run_kmq():
                t = time.perf_counter()
                km = kmq.KMeans(k, n_init=10, random_state=seed).fit(img)
                return time.perf_counter() - t, km.inertia_ / n, km.n_iter_

            def run_sk():
                t = time.perf_counter()
                sk = SkKMeans(k, n_init=10, random_state=seed).fit(X)
                return time.perf_counter() - t, sk.inertia_ / n, sk.n_iter_

            order = [run_kmq, run_sk] if seed % 2 == 0 else [run_sk, run_kmq]
            res = {f.__name__: f() for f in order}
            (tq, mq, iq), (ts, ms, is_) = res["run_kmq"], res["run_sk"]
            row = {"k": k, "seed": seed, "kmq_s": tq, "sklearn_s": ts, "kmq_mse": mq,
                   "sklearn_mse": ms, "kmq_iter": iq, "sklearn_iter": is_,
                   "speedup": ts / tq, "mse_ratio": mq / ms}
            rows.append(row)
            print(f"k={k:3d} seed={seed}: kmq {tq:7.3f} s mse {mq:9.3f} | scikit-learn {ts:8.2f} s "
                  f"mse {ms:9.3f} | {ts / tq:6.1f}x faster, mse ratio {mq / ms:.5f}", flush=True)
    print("\n| k | seeds | median kmq s | median sklearn s | median speedup | median mse kmq/sklearn |")
    print("|---|---|---|---|---|---|")
    summary = []
    for k in sorted({r["k"] for r in rows}):
        rk = [r for r in rows if r["k"] == k]
        s = {"k": k, "seeds": len(rk),
             "kmq_s": statistics.median(r["kmq_s"] for r in rk),
             "sklearn_s": statistics.median(r["sklearn_s"] for r in rk),
             "speedup": statistics.median(r["speedup"] for r in rk),
             "mse_ratio": statistics.median(r["mse_ratio"] for r in rk)}
        summary.append(s)
        print(f"| {k} | {s['seeds']} | {s['kmq_s']:.3f} | {s['sklearn_s']:.2f} | "
              f"{s['speedup']:.1f}x | {s['mse_ratio']:.5f} |")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"image": os.path.basename(args.image), "pixels": n,
                   "cpus": os.cpu_count(), "machine": platform.machine(),
                   "kmq": kmq.library_version(), "sklearn": sklearn.__version__,
                   "rows": rows, "summary": summary}, f, indent=1)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
