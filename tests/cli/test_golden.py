"""Golden outputs: one fixed job over every bundled photo must give, at 1 and
at 2 threads, exactly the bytes recorded in tests/cli/golden.json.

The job: every image in data/photos, k = 2, 5, 16, 64, restarts 2, seed 11,
save = indexed, labels, palette, at the default report = light; and a second
job, china.jpg under report = full (the chart files). Every file the run writes is compared
through its SHA-256, except .kmq.lock and index.html:
  - PNG (indexed, label map, swatch), SVG (charts), thumb.jpg, preview.jpg
    and report.css: the
    file's bytes (libvips' JPEG encoder gives the same bytes on every run
    and at every thread count);
  - summary.json and run.json: the document without wall-clock fields
    (kmqtest.strip_timings: seconds, wall, threads, started_utc), without
    the config hash (it covers the file's modification time) and without
    kmq_version (a release is not a format change), with every number kept
    as the text kmq wrote, re-indented;
  - elbow.csv: every row without its timing columns (seconds, image_seconds).
A file missing, an extra file and a changed file all fail.

The point is that refactors keep every output byte-identical. Regenerate
golden.json only when an output format or a result changes on purpose (a
new field, a fixed bug that changes numbers, a change of the photos), and
say so in the commit:

    KMQ_GOLDEN_UPDATE=1 ctest -R cli_test_golden

which writes tests/cli/golden.json from the 1-thread run after checking
that the 2-thread run gives the same checksums."""
import hashlib
import json
import os
import shutil
import subprocess
import unittest

import kmqtest as kt

GOLDEN = os.path.join(kt.SOURCE, "tests", "cli", "golden.json")
UPDATE = os.environ.get("KMQ_GOLDEN_UPDATE") == "1"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".gif")
JOB = """[run]
output = out
seed = 11
[defaults]
k = 2, 5, 16, 64
restarts = 2
save = indexed, labels, palette
[job photos]
input = photos
[job full]
input = photos/china.jpg
report = full
"""
NOT_COMPARED = {".kmq.lock", "index.html"}


def canonical_json(path):
    """The comparable form of a summary.json or run.json (see above)."""
    kt.load_json(path)  # matches its schema
    with open(path, encoding="utf-8") as f:
        doc = json.load(f, parse_float=str, parse_int=str)
    doc = kt.strip_timings(doc)
    doc.pop("kmq_version")
    if "config" in doc:
        doc["config"].pop("hash")
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def canonical_csv(path):
    rows = kt.csv_rows_without_timings(path)
    assert rows[0] == ["job", "image", "k", "inertia", "mse", "psnr_db", "iterations",
                       "k_effective", "mse_output", "png_bytes", "ratio_vs_input"], rows[0]
    return "".join(",".join(row) + "\n" for row in rows).encode("utf-8")


def checksum(path):
    name = os.path.basename(path)
    if name in ("summary.json", "run.json"):
        data = canonical_json(path)
    elif name == "elbow.csv":
        data = canonical_csv(path)
    elif name.endswith((".png", ".svg", ".jpg", ".css")):
        with open(path, "rb") as f:
            data = f.read()
    else:
        raise AssertionError(f"{path}: a kind of output the golden test does not know; "
                             "add it to test_golden.py")
    return hashlib.sha256(data).hexdigest()


def run_job(threads):
    """Runs the job in a fresh folder; {path under OUT: checksum}."""
    d = kt.fresh_dir(f"golden_t{threads}")
    photos = os.path.join(d, "photos")
    os.makedirs(photos)
    for name in sorted(os.listdir(kt.PHOTOS)):
        if name.lower().endswith(IMAGE_EXTENSIONS):
            shutil.copy(os.path.join(kt.PHOTOS, name), photos)
    kt.write_job(os.path.join(d, "job.ini"), JOB)
    # Relative job file and input, so that paths in the documents do not
    # depend on where the tree is.
    proc = subprocess.run([kt.KMQ, "run", "job.ini", "--threads", str(threads), "--quiet"],
                          cwd=d, capture_output=True, text=True, errors="replace", timeout=900)
    assert proc.returncode == 0, f"kmq run exited {proc.returncode}\n{proc.stderr}"
    out = os.path.join(d, "out")
    sums = {}
    for dirpath, _, filenames in os.walk(out):
        for name in filenames:
            if name in NOT_COMPARED:
                continue
            path = os.path.join(dirpath, name)
            sums[os.path.relpath(path, out)] = checksum(path)
    return sums


def describe_difference(want, got):
    lines = []
    for rel in sorted(set(want) | set(got)):
        if rel not in got:
            lines.append(f"  missing: {rel}")
        elif rel not in want:
            lines.append(f"  not in golden.json: {rel}")
        elif want[rel] != got[rel]:
            lines.append(f"  changed: {rel}")
    return lines


class Golden(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if UPDATE:
            one, two = run_job(1), run_job(2)
            assert one == two, "1 and 2 threads differ:\n" + "\n".join(
                describe_difference(one, two))
            with open(GOLDEN, "w") as f:
                json.dump({"job": JOB.strip().split("\n"), "files": one}, f, indent=1,
                          sort_keys=True)
                f.write("\n")
            print(f"wrote {GOLDEN}: {len(one)} files")
        with open(GOLDEN) as f:
            golden = json.load(f)
        cls.want = golden["files"]
        assert golden["job"] == JOB.strip().split("\n"), "golden.json is of another job"

    def check(self, threads):
        got = run_job(threads)
        lines = describe_difference(self.want, got)
        if lines:
            self.fail(f"{threads} thread(s): {len(lines)} of {len(self.want)} files differ "
                      "from tests/cli/golden.json:\n" + "\n".join(lines[:40]))

    def test_covers_every_kind_of_output(self):
        names = {os.path.basename(rel) for rel in self.want}
        for name in ("run.json", "elbow.csv", "summary.json", "thumb.jpg", "report.css",
                     "preview.jpg", "elbow.svg", "restarts.svg", "k64.png", "k64.labels.png",
                     "k64.palette.png", "k64.palette.svg", "k64.colors.svg"):
            self.assertIn(name, names)
        images = {rel.split(os.sep)[1] for rel in self.want if rel.count(os.sep) == 2}
        self.assertEqual(images, {n for n in os.listdir(kt.PHOTOS)
                                  if n.lower().endswith(IMAGE_EXTENSIONS)})

    def test_one_thread(self):
        self.check(1)

    def test_two_threads(self):
        self.check(2)


if __name__ == "__main__":
    unittest.main()
