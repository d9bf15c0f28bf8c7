#!/usr/bin/python3
"""Side-by-side k-means colour quantization: kmq vs the tools a user would
otherwise pick, on the same pixels, same k, 2 threads each (see run.sh).

mse is computed the same way for everybody (docs/design.md): for fitters that
return centres (scikit-learn, OpenCV, faiss, kmq) the inertia of the returned
labels/centres divided by the pixel count; for tools that only write an image
(pngquant, ImageMagick, libvips, and kmq's own written PNG as mse_output) the
squared RGB error between output and input pixels, summed over channels,
averaged over pixels. Times: wall clock of the fit (fitters) or of the whole
command (tools). A best of 10 random starts moves with the draws (single
fits differ by about 1 % in mse), so --seeds N repeats the best-of-10 rows
with N seeds each (--first-seed S: seeds S..S+N-1, so that a slow row can be
split over several runs) and reports medians; the JSON keeps each seed's
time and mse. --kmq-tol adds kmq best-of-10 rows at
a tighter tol than scikit-learn's (both default to 1e-4, the same stopping
rule). Writes JSON + a markdown table.
"""
import argparse, glob, json, os, platform, shutil, subprocess, sys, tempfile, time

import numpy as np
from PIL import Image


def load(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def mse_labels(X, centers, labels):
    d = X - centers[labels]
    return float(np.einsum("ij,ij->", d, d)) / len(X)


def mse_images(a, b):
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.einsum("ijk,ijk->", d, d)) / (a.shape[0] * a.shape[1])


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def seeds_note(mses, seeds):
    """Names the seeds and the spread of a best-of-10 row run with several."""
    if len(mses) < 2:
        return ""
    return f"median of seeds {seeds[0]}..{seeds[-1]}, mse {min(mses):.2f}..{max(mses):.2f}"


def timed(cmd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--png", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--k", default="16,64,256")
    ap.add_argument("--kmq", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", default="",
                    help="comma list of methods to skip: sklearn1, sklearn10, opencv, faiss, "
                         "pngquant, ImageMagick, vips; NAME@K skips it for that k only")
    ap.add_argument("--seeds", type=int, default=1,
                    help="run the best-of-10 rows (scikit-learn n_init=10, kmq restarts=10) with "
                         "seeds 0..N-1 (random_state, --seed) and report the median time and mse")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="the first of the --seeds seeds (default 0)")
    ap.add_argument("--kmq-tol", default="",
                    help="comma list of tol values: for each, one more kmq restarts=10 row run "
                         "through a job file with that tol (the default is scikit-learn's 1e-4)")
    ap.add_argument("--out", required=True, help="JSON file to append results to")
    a = ap.parse_args()
    skip_list = set(filter(None, a.skip.split(",")))
    kmq_tols = [t.strip() for t in a.kmq_tol.split(",") if t.strip()]
    for t in kmq_tols:
        float(t)  # a bad value stops here, before any fit

    def skipped(name, k):
        return name in skip_list or f"{name}@{k}" in skip_list
    img = load(a.png)
    X = img.reshape(-1, 3).astype(np.float64)
    npix = len(X)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), VIPS_CONCURRENCY=str(a.threads),
               MAGICK_THREAD_LIMIT=str(a.threads))
    rows = []
    tmp = tempfile.mkdtemp(prefix="kmq-peers.")

    best_of_10_seeds = list(range(a.first_seed, a.first_seed + a.seeds))

    def add(method, k, seconds, mse, note="", mses=None, times=None, seeds=None):
        rows.append(dict(image=a.label, pixels=npix, method=method, k=k, seconds=seconds,
                         mse=mse, note=note, mses=mses or [mse], times=times or [seconds],
                         seeds=seeds or [0]))
        print(f"  {a.label} k={k:<4} {method:<38} {seconds:9.3f} s  mse {mse:9.3f} {note}",
              flush=True)

    for k in [int(v) for v in a.k.split(",")]:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            threadpool_limits = None
        try:
            from sklearn.cluster import KMeans
            for n_init in (1, 10):
                name = f"sklearn lloyd n_init={n_init}"
                if skipped(name, k) or skipped(f"sklearn{n_init}", k):
                    continue
                times, mses = [], []
                seeds = best_of_10_seeds if n_init == 10 else [0]
                for seed in seeds:
                    km = KMeans(n_clusters=k, n_init=n_init, algorithm="lloyd", random_state=seed)
                    t = time.perf_counter()
                    if threadpool_limits:
                        with threadpool_limits(a.threads):
                            km.fit(X)
                    else:
                        km.fit(X)
                    times.append(time.perf_counter() - t)
                    mses.append(float(km.inertia_) / npix)
                add(name, k, median(times), median(mses), seeds_note(mses, seeds), mses, times, seeds)
        except ImportError:
            print("  (scikit-learn not installed: run.sh --install)")
        if not skipped("opencv", k):
            try:
                import cv2
                cv2.setNumThreads(a.threads)
                crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 300, 1e-4)
                Xf = X.astype(np.float32)
                t = time.perf_counter()
                _, lab, cen = cv2.kmeans(Xf, k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
                dt = time.perf_counter() - t
                add("OpenCV kmeans++ attempts=1", k, dt,
                    mse_labels(X, cen.astype(np.float64), lab.ravel()))
            except ImportError:
                print("  (OpenCV not installed: run.sh --install)")
        if not skipped("faiss", k):
            try:
                import faiss
                faiss.omp_set_num_threads(a.threads)
                Xf = np.ascontiguousarray(X.astype(np.float32))
                km = faiss.Kmeans(3, k, niter=50, seed=1, max_points_per_centroid=1 << 30)
                t = time.perf_counter()
                km.train(Xf)
                _, lab = km.index.search(Xf, 1)
                dt = time.perf_counter() - t
                add("faiss Kmeans niter=50", k, dt,
                    mse_labels(X, km.centroids.astype(np.float64), lab.ravel()))
            except ImportError:
                print("  (faiss not installed: run.sh --install)")
        tools = []
        if shutil.which("pngquant"):
            tools.append(("pngquant --speed 1 --nofs", lambda o: [
                "pngquant", "--speed", "1", "--nofs", "--force", "--output", o, str(k), a.png]))
        if os.path.exists("/usr/bin/convert"):
            tools.append(("ImageMagick -colors +dither", lambda o: [
                "/usr/bin/convert", a.png, "+dither", "-colors", str(k), o]))
        # libvips 8.14's palette save takes a bit depth (1, 2, 4, 8), not a
        # colour count: it can only be asked for 2, 4, 16 or 256 colours.
        if shutil.which("vips") and k in (2, 4, 16, 256):
            bits = {2: 1, 4: 2, 16: 4, 256: 8}[k]
            tools.append(("vips palette save (dither=0)", lambda o: [
                "vips", "copy", a.png, f"{o}[palette,bitdepth={bits},dither=0]"]))
        for name, cmd in tools:
            if skipped(name.split()[0], k):
                continue
            o = os.path.join(tmp, f"out-{k}.png")
            try:
                dt = timed(cmd(o), env)
            except subprocess.CalledProcessError as e:
                print(f"  {name} failed: {e}")
                continue
            add(name, k, dt, mse_images(img, load(o)))
        # kmq: restarts=10 fit time from the summary; restarts=1 end to end.
        # tol None: `kmq quantize` (default tol); a value: `kmq run` with a
        # job file, the only place tol is set.
        for restarts, tol in [(10, None)] + [(10, t) for t in kmq_tols] + [(1, None)]:
            fits, mses, ends = [], [], []
            seeds = best_of_10_seeds if restarts == 10 else [0]
            for seed in seeds:
                od = os.path.join(tmp, f"kmq-{k}-{restarts}-{tol}-{seed}")
                shutil.rmtree(od, ignore_errors=True)
                if tol is None:
                    cmd = [a.kmq, "quantize", a.png, "-k", str(k), "--restarts", str(restarts),
                           "--seed", str(seed), "--threads", str(a.threads), "-o", od, "--quiet"]
                else:
                    os.makedirs(od)
                    job = os.path.join(od, "job.ini")
                    with open(job, "w") as f:
                        f.write(f"[run]\noutput = out\nseed = {seed}\nthreads = {a.threads}\n"
                                f"[defaults]\nk = {k}\nrestarts = {restarts}\ntol = {tol}\n"
                                f"save = indexed\n[job peers]\ninput = {os.path.abspath(a.png)}\n")
                    cmd = [a.kmq, "run", job, "--quiet"]
                dt = timed(cmd, env)
                summ = json.load(open(glob.glob(os.path.join(od, "**", "summary.json"),
                                                recursive=True)[0]))
                r = summ["results"][0]
                fits.append(r["seconds"]["fit"])
                mses.append(r["mse"])
                ends.append(dt)
            if restarts == 10:
                add("kmq restarts=10 (fit)" if tol is None else f"kmq restarts=10 tol={tol} (fit)",
                    k, median(fits), median(mses),
                    f"end to end {median(ends):.3f} s" +
                    (f"; {seeds_note(mses, seeds)}" if len(mses) > 1 else ""), mses, fits, seeds)
            else:
                add("kmq quantize restarts=1 (end to end)", k, dt, r["mse_output"],
                    f"fit mse {r['mse']:.3f}, PNG {r['files']['indexed']['bytes']} B")
    shutil.rmtree(tmp, ignore_errors=True)
    old = json.load(open(a.out)) if os.path.exists(a.out) else {"rows": []}
    old["rows"] += rows
    old["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, " + \
        next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    old["threads"] = a.threads
    json.dump(old, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
