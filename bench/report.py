#!/usr/bin/python3
"""The report at scale: how fast the overview opens and how much it weighs.

    /usr/bin/python3 bench/report.py [--kmq build/kmq] [--work DIR]
        [--small N] [--photos N] [--repeat R] [--skip-runs]

Runs (each in WORK, default /tmp/kmq-bench-report):
  small   N (10 000) generated images of 16..48 px, k = 2, 4, restarts 1;
  photos  up to N (150) photos: Debian's wallpaper packages
          (/usr/share/backgrounds, /usr/share/wallpapers; install e.g.
          mate-backgrounds, gnome-backgrounds, ukui-wallpapers,
          sway-backgrounds, plasma-workspace-wallpapers) and KMQ_PHOTOS_EXTRA,
          files of 20 KB and more, k = 8, 16, restarts 2;
  bundled data/photos as configs/demo.ini (k = 4, 8, 16, 32), at the default
          report = light and at report = full.
and measures, for each:
  - overview load in headless Chromium (tests/cli/browser.py): from
    navigation until every image inside a 1400 x 900 viewport has loaded and
    decoded (performance.now() then), first load and the median of R
    reloads;
  - the overview's own bytes: index.html + report.css + the thumbnails of
    the table's first page (50 rows);
  - report bytes (every index.html, report.css, thumb.jpg, preview.jpg,
    *.svg) against the quantized PNG bytes (kK.png);
  - `kmq report OUT` over the small run: wall time and peak RSS (GNU time),
    median of R.
Prints one line per figure and writes WORK/report-bench.json. No timing is
asserted: the machine may be shared and loaded; quote medians."""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "cli"))
import browser  # noqa: E402

REPORT_NAMES = ("index.html", "report.css", "thumb.jpg", "preview.jpg")
K_PNG = re.compile(r"^k\d+\.png$")


def run(cmd, **kw):
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return proc, time.monotonic() - t0


def write_job(path, output, inputs, ks, restarts, report=None, recursive=False):
    lines = ["[run]", f"output = {output}", "[defaults]", f"k = {ks}",
             f"restarts = {restarts}", "[job photos]"]
    lines += [f"input = {i}" for i in inputs]
    if recursive:
        lines.append("recursive = true")
    if report:
        lines.append(f"report = {report}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def sizes(out):
    report = png = 0
    for dirpath, _, files in os.walk(out):
        for name in files:
            size = os.path.getsize(os.path.join(dirpath, name))
            if name in REPORT_NAMES or name.endswith(".svg"):
                report += size
            elif K_PNG.match(name):
                png += size
    return report, png


def overview_bytes(out):
    html = os.path.join(out, "index.html")
    with open(html, encoding="utf-8") as f:
        text = f.read()
    rows = json.loads(re.search(r'id="kmq-rows">(.*?)</script>', text, re.S).group(1))
    total = os.path.getsize(html) + os.path.getsize(os.path.join(out, "report.css"))
    import urllib.parse
    for r in rows[:50]:
        if r[13] & 1:
            total += os.path.getsize(os.path.join(out, urllib.parse.unquote(r[0]), "thumb.jpg"))
    return total


def load_times(out, repeat):
    url = "file://" + os.path.join(os.path.abspath(out), "index.html")
    times = []
    with browser.Browser(timeout=120) as b:
        for _ in range(repeat + 1):
            b.open(url, width=1400, height=900)
            state = b.eval(browser.VISIBLE_IMAGES_DECODED, timeout=120)
            assert not state["broken"], state
            times.append(state["ms"] / 1000)
            visible = state["visible"]
    return times[0], statistics.median(times[1:]), visible


def make_small(folder, n):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        path = os.path.join(folder, f"s{i:05d}.png")
        if os.path.exists(path):
            continue
        w, h = (int(v) for v in rng.integers(16, 49, 2))
        base = rng.integers(0, 256, 3)
        img = np.clip(base + rng.normal(0, 35, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img, "RGB").save(path)


def find_photos(limit):
    roots = ["/usr/share/backgrounds", "/usr/share/wallpapers"]
    extra = os.environ.get("KMQ_PHOTOS_EXTRA")
    if extra:
        roots.append(extra)
    found = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                if name.lower().endswith((".jpg", ".jpeg", ".png", ".webp")) and \
                        os.path.getsize(path) >= 20_000 and not os.path.islink(path):
                    found.append(path)
    return sorted(found)[:limit]


def peak_rss_kb(stderr):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kmq", default=os.path.join(SOURCE, "build", "kmq"))
    ap.add_argument("--work", default="/tmp/kmq-bench-report")
    ap.add_argument("--small", type=int, default=10000)
    ap.add_argument("--photos", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-runs", action="store_true", help="reuse the outputs in WORK")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    results = {}

    def say(key, text, value):
        results[key] = value
        print(f"{key}: {text}", flush=True)

    # ---- bundled photos, light and full --------------------------------
    for mode in ("light", "full"):
        out = os.path.join(a.work, f"bundled-{mode}")
        if not a.skip_runs:
            shutil.rmtree(out, ignore_errors=True)
            job = write_job(os.path.join(a.work, f"bundled-{mode}.ini"), out,
                            [os.path.join(SOURCE, "data", "photos")], "4, 8, 16, 32", 4,
                            None if mode == "light" else mode)
            proc, _ = run([a.kmq, "run", job, "--quiet"])
            assert proc.returncode == 0, proc.stderr
        rep, png = sizes(out)
        say(f"bundled_{mode}_report_ratio",
            f"bundled photos, report = {mode}: report {rep} B / PNG {png} B = "
            f"{100 * rep / png:.1f} %", {"report": rep, "png": png, "ratio": rep / png})

    # ---- photos ----------------------------------------------------------
    photos = find_photos(a.photos)
    out = os.path.join(a.work, "photos")
    if len(photos) < a.photos:
        print(f"photos: only {len(photos)} found (install Debian's wallpaper packages)")
    if photos:
        if not a.skip_runs:
            shutil.rmtree(out, ignore_errors=True)
            listing = os.path.join(a.work, "photos-in")
            shutil.rmtree(listing, ignore_errors=True)
            os.makedirs(listing)
            for i, p in enumerate(photos):  # links: one flat folder, names unique
                os.symlink(p, os.path.join(listing, f"{i:03d}-{os.path.basename(p)}"))
            job = write_job(os.path.join(a.work, "photos.ini"), out, [listing], "8, 16", 2)
            with open(job, "a") as f:
                f.write("links = follow\n")
            proc, secs = run([a.kmq, "run", job, "--quiet"])
            assert proc.returncode in (0, 1), proc.stderr
            say("photos_run_s", f"{len(photos)} photos: kmq run {secs:.0f} s", secs)
        rep, png = sizes(out)
        say("photos_report_ratio", f"{len(photos)} photos, report = light: report {rep} B / "
            f"PNG {png} B = {100 * rep / png:.2f} %", {"report": rep, "png": png,
                                                      "ratio": rep / png, "images": len(photos)})
        ob = overview_bytes(out)
        say("photos_overview_bytes", f"{len(photos)} photos: overview's own bytes {ob} B", ob)
        first, med, vis = load_times(out, a.repeat)
        say("photos_load_s", f"{len(photos)} photos: overview loaded, {vis} visible images "
            f"decoded: first {first:.2f} s, median of {a.repeat} {med:.2f} s",
            {"first": first, "median": med, "visible": vis})

    # ---- small images ------------------------------------------------------
    small_in = os.path.join(a.work, "small-in")
    out = os.path.join(a.work, "small")
    if not a.skip_runs:
        make_small(small_in, a.small)
        shutil.rmtree(out, ignore_errors=True)
        job = write_job(os.path.join(a.work, "small.ini"), out, [small_in], "2, 4", 1)
        proc, secs = run([a.kmq, "run", job, "--quiet"])
        assert proc.returncode == 0, proc.stderr
        say("small_run_s", f"{a.small} small images: kmq run {secs:.0f} s", secs)
    rep, png = sizes(out)
    say("small_report_ratio", f"{a.small} small images: report {rep} B / PNG {png} B = "
        f"{100 * rep / png:.1f} % (thumbnails of tiny images weigh as much as the images)",
        {"report": rep, "png": png, "ratio": rep / png})
    html = os.path.getsize(os.path.join(out, "index.html"))
    ob = overview_bytes(out)
    say("small_overview_bytes", f"{a.small} small images: index.html {html} B; overview's "
        f"own bytes {ob} B", {"index_html": html, "own": ob})
    first, med, vis = load_times(out, a.repeat)
    say("small_load_s", f"{a.small} small images: overview loaded, {vis} visible images "
        f"decoded: first {first:.2f} s, median of {a.repeat} {med:.2f} s",
        {"first": first, "median": med, "visible": vis})
    walls, rss = [], []
    for _ in range(a.repeat):
        proc, secs = run(["/usr/bin/time", "-v", a.kmq, "report", out])
        assert proc.returncode == 0, proc.stderr
        walls.append(secs)
        rss.append(peak_rss_kb(proc.stderr))
    say("small_kmq_report", f"kmq report over {a.small} summaries: median {statistics.median(walls):.2f} s "
        f"(min {min(walls):.2f}, max {max(walls):.2f}), peak RSS median "
        f"{statistics.median(rss) / 1024:.1f} MiB", {"seconds": walls, "rss_kb": rss})

    with open(os.path.join(a.work, "report-bench.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
