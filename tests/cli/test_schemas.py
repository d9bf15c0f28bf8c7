"""docs/summary.schema.json and docs/run.schema.json describe what kmq writes.

A few jobs produce every shape the writers have (an ok image, a failed one, k
above the distinct colours so psnr_db is null, images with and without an
elbow, a grey and an RGBA input, a job that saves only label maps, pending
images of an interrupted run, stale images of a changed configuration, a
run.json rebuilt by kmq report without the run's facts); then every
summary.json and run.json in the output trees must match its schema, with
its keys in the schema's order. Documents that break the schema in one
place each (a wrong type, an extra field, a missing field, a value out of
range) must fail, so the check cannot pass by accepting anything.
(kmqtest.load_json applies the same validation in every other CLI test.)"""
import copy
import json
import os
import shutil
import time
import unittest

from PIL import Image

import kmqtest as kt


def make_inputs(folder):
    os.makedirs(folder)
    # Three colours: k = 4, 6, 8 fit k_effective = 3 and are lossless.
    im = Image.new("RGB", (40, 30), (255, 0, 0))
    for x in range(20):
        for y in range(30):
            im.putpixel((x, y), (0, 0, 255) if y < 15 else (0, 255, 0))
    im.save(os.path.join(folder, "three.png"))
    # Four noisy blobs: a clear elbow at k = 4.
    im = Image.new("RGB", (64, 64))
    centres = [(10, 10, 10), (240, 240, 240), (200, 30, 30), (30, 200, 30)]
    for x in range(64):
        for y in range(64):
            c = centres[(x // 32) * 2 + y // 32]
            d = (x * 7 + y * 13) % 11 - 5
            im.putpixel((x, y), tuple(min(255, max(0, v + d)) for v in c))
    im.save(os.path.join(folder, "four.png"))
    # One band: a grey ramp.
    grey = Image.new("L", (32, 8))
    grey.putdata([(x * 8) % 256 for y in range(8) for x in range(32)])
    grey.save(os.path.join(folder, "grey.png"))
    # Empty: decode_failed.
    open(os.path.join(folder, "x.png"), "wb").close()


def documents(root):
    """(path, schema name) of every summary.json and run.json under root."""
    for dirpath, _, filenames in os.walk(root):
        for name in sorted(filenames):
            if name in kt.SCHEMA_OF:
                yield os.path.join(dirpath, name), kt.SCHEMA_OF[name]


def wait_for(predicate, timeout=300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


class Schemas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = kt.fresh_dir("schemas")
        cls.roots = []
        inp = os.path.join(d, "in")
        make_inputs(inp)
        coffee = os.path.join(kt.PHOTOS, "coffee.png")

        # kmq quantize: the job "quantize", no job file.
        q = os.path.join(d, "quantize")
        kt.run("quantize", coffee, "-k", "2,4,8", "--save", "indexed,labels,palette", "-o", q,
               "--threads", "2", "--quiet", check_code=0)
        cls.roots.append(q)

        # kmq run: ok and failed images, two jobs, one saving label maps only.
        def job(output, seed):
            return kt.write_job(os.path.join(d, f"{output}.ini"), f"""
[run]
output = {output}
seed = {seed}
[defaults]
k = 2, 3, 4, 6, 8
restarts = 2
save = indexed, labels, palette
[job a]
input = in
[job b]
input = {kt.PHOTOS}/chelsea_alpha.png
save = labels
""")

        full = os.path.join(d, "full")
        kt.run("run", job("full", 5), "--threads", "2", "--quiet", check_code=1)
        cls.roots.append(full)

        # The same tree under another seed, one shard of two redone: the
        # other shard's images are stale.
        stale = os.path.join(d, "stale")
        shutil.copytree(full, stale)
        proc = kt.run("run", job("stale", 6), "--threads", "2", "--quiet", "--shard", "1/2")
        assert proc.returncode in (0, 1), proc.stderr
        cls.roots.append(stale)

        # kmq report without an earlier run.json: threads 0, no start time.
        rebuilt = os.path.join(d, "rebuilt")
        shutil.copytree(full, rebuilt)
        os.remove(os.path.join(rebuilt, "run.json"))
        kt.run("report", rebuilt, check_code=0)
        cls.roots.append(rebuilt)

        # An interrupted run: the images after the first are pending.
        many = os.path.join(d, "many")
        os.makedirs(many)
        for i in range(3):
            for name in kt.BUNDLED:
                shutil.copy(os.path.join(kt.PHOTOS, name), os.path.join(many, f"{i}_{name}"))
        log = os.path.join(d, "interrupted.log")
        ijob = kt.write_job(os.path.join(d, "interrupted.ini"), """
[run]
output = interrupted
[defaults]
k = 2, 3, 4
restarts = 2
[job j]
input = many
""")
        proc = kt.start("run", ijob, "--threads", "2", "--log", log)

        def one_done():
            if not os.path.exists(log):
                return False
            with open(log, errors="replace") as f:
                return ": ok," in f.read()

        wait_for(lambda: one_done() or proc.poll() is not None)
        proc.send_signal(2)  # SIGINT
        proc.communicate(timeout=600)
        assert proc.returncode == 130, proc.returncode
        cls.roots.append(os.path.join(d, "interrupted"))

        cls.docs = []
        for root in cls.roots:
            for path, name in documents(root):
                with open(path) as f:
                    cls.docs.append((path, name, json.load(f)))

    def schema(self, name):
        return kt.schema_validator(name).schema

    def resolve(self, schema, node):
        while "$ref" in node:
            assert node["$ref"].startswith("#/$defs/"), node["$ref"]
            node = schema["$defs"][node["$ref"][len("#/$defs/"):]]
        return node

    def check_order(self, schema, node, doc, where):
        """Every object's keys come in the order of its schema's properties."""
        node = self.resolve(schema, node)
        if isinstance(doc, dict):
            if "properties" not in node:
                node = next(self.resolve(schema, alt) for alt in node["oneOf"]
                            if self.resolve(schema, alt).get("type") == "object")
            props = node["properties"]
            self.assertEqual(list(doc), [k for k in props if k in doc], where)
            for key, value in doc.items():
                self.check_order(schema, props[key], value, f"{where}/{key}")
        elif isinstance(doc, list) and "items" in node:
            for i, value in enumerate(doc):
                self.check_order(schema, node["items"], value, f"{where}/{i}")

    def test_every_document_matches_its_schema(self):
        # quantize: 1 + 1; full: 5 + 1; stale: 5 + 1; rebuilt: 5 + 1;
        # interrupted: at least 1 + 1.
        self.assertGreaterEqual(len(self.docs), 22, [p for p, _, _ in self.docs])
        for path, name, doc in self.docs:
            kt.validate(doc, name, path)
            self.check_order(self.schema(name), self.schema(name), doc, path)
        # The hook in kmqtest.load_json validates the same files.
        for path, _, _ in self.docs:
            kt.load_json(path)

    def test_outputs_cover_the_schema(self):
        """The trees hold every shape the schemas allow for, so validation
        has exercised each branch."""
        summaries = [doc for _, name, doc in self.docs if name == "summary"]
        runs = [doc for _, name, doc in self.docs if name == "run"]
        self.assertEqual({s["status"] for s in summaries}, {"ok", "error"})
        results = [r for s in summaries for r in s["results"]]
        self.assertIn(None, {r["psnr_db"] for r in results})
        self.assertTrue(any(r["k_effective"] < r["k"] for r in results))
        self.assertTrue(any("indexed" not in r["files"] for r in results))
        self.assertTrue(any(r["compression"]["png_bytes"] == 0 for r in results))
        elbows = {s["elbow"]["k"] for s in summaries if s["status"] == "ok"}
        self.assertIn(None, elbows)
        self.assertTrue(elbows - {None})
        self.assertTrue({1, 3, 4} <= {s["input"]["bands"] for s in summaries})
        self.assertEqual({r["status"] for r in runs},
                         {"complete", "failures", "incomplete", "interrupted"})
        self.assertEqual({im["status"] for r in runs for im in r["images"]},
                         {"ok", "error", "pending", "stale"})
        self.assertIn(0, {r["threads"] for r in runs})
        self.assertIn(None, {r["started_utc"] for r in runs})
        self.assertIn(None, {r["job_file"] for r in runs})
        job_elbows = {j["elbow"]["k"] for r in runs for j in r["jobs"]}
        self.assertIn(None, job_elbows)
        self.assertTrue(job_elbows - {None})

    def test_every_field_is_documented(self):
        """Each property of each schema has a description: the schemas are
        the format's documentation."""
        def walk(node, where):
            if isinstance(node, dict):
                for key, prop in node.get("properties", {}).items():
                    if "description" not in prop:
                        missing.append(f"{where}/{key}")
                for key, value in node.items():
                    if key not in ("allOf", "if", "then", "else"):
                        walk(value, f"{where}/{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, f"{where}/{i}")

        for name in ("summary", "run"):
            missing = []
            walk(self.schema(name), name)
            self.assertEqual(missing, [])

    def doc_of(self, name, pred=lambda doc: True):
        return copy.deepcopy(next(doc for _, n, doc in self.docs if n == name and pred(doc)))

    def assert_invalid(self, doc, name, where):
        with self.assertRaises(AssertionError, msg=where) as cm:
            kt.validate(doc, name, where)
        self.assertIn(f"docs/{name}.schema.json", str(cm.exception))

    def test_broken_summaries_fail(self):
        ok = self.doc_of("summary", lambda s: s["status"] == "ok")
        kt.validate(ok, "summary")
        failed = self.doc_of("summary", lambda s: s["status"] == "error")
        kt.validate(failed, "summary")
        breaks = {
            "k is a string": lambda s: s["results"][0].__setitem__("k", "2"),
            "k above 256": lambda s: s["results"][0].__setitem__("k", 257),
            "negative pixel count": lambda s: s["results"][0]["palette"][0].__setitem__(
                "pixels", -1),
            "bits_per_pixel 3": lambda s: s["results"][0]["files"]["indexed"].__setitem__(
                "bits_per_pixel", 3),
            "extra top-level field": lambda s: s.__setitem__("note", "hello"),
            "extra field in a result": lambda s: s["results"][0].__setitem__("extra", 1),
            "extra field in a file": lambda s: s["results"][0]["files"]["labels"].__setitem__(
                "bits_per_pixel", 8),
            "unknown file kind": lambda s: s["results"][0]["files"].__setitem__(
                "preview", {"path": "preview.jpg", "bytes": 1}),
            "missing field": lambda s: s["input"].pop("unique_colors"),
            "unknown status": lambda s: s.__setitem__("status", "done"),
            "error with status ok": lambda s: s.__setitem__(
                "error", {"code": "decode_failed", "message": "x"}),
            "width null in an ok image": lambda s: s["input"].__setitem__("width", None),
            "no results in an ok image": lambda s: s.__setitem__("results", []),
            "bad hex": lambda s: s["results"][0]["palette"][0].__setitem__("hex", "#ABCDEF"),
            "rgb of two": lambda s: s["results"][0]["palette"][0]["rgb"].pop(),
            "schema 2": lambda s: s.__setitem__("schema", 2),
            "unknown init": lambda s: s["config"].__setitem__("init", "kmeans||"),
            "negative seconds": lambda s: s["seconds"].__setitem__("total", -1.0),
        }
        for what, change in breaks.items():
            doc = copy.deepcopy(ok)
            change(doc)
            self.assert_invalid(doc, "summary", what)
        failed_breaks = {
            "results in a failed image": lambda s: s.__setitem__("results", ok["results"]),
            "no error in a failed image": lambda s: s.__setitem__("error", None),
            "unknown error code": lambda s: s["error"].__setitem__("code", "oops"),
            "elbow in a failed image": lambda s: s["elbow"].__setitem__("k", 4),
        }
        for what, change in failed_breaks.items():
            doc = copy.deepcopy(failed)
            change(doc)
            self.assert_invalid(doc, "summary", what)

    def test_broken_runs_fail(self):
        run = self.doc_of("run", lambda r: {"ok", "pending"} <= {i["status"] for i in r["images"]})
        kt.validate(run, "run")

        def image(r, status):
            return next(i for i in r["images"] if i["status"] == status)

        breaks = {
            "totals.images is a string": lambda r: r["totals"].__setitem__("images", "7"),
            "extra field in totals": lambda r: r["totals"].__setitem__("skipped", 0),
            "extra field in an image": lambda r: image(r, "ok").__setitem__("hash", "ab"),
            "extra field in a job": lambda r: r["jobs"][0].__setitem__("not_done", 0),
            "missing jobs": lambda r: r.pop("jobs"),
            "unknown run status": lambda r: r.__setitem__("status", "done"),
            "unknown image status": lambda r: image(r, "ok").__setitem__("status", "skipped"),
            "pending with another code": lambda r: image(r, "pending")["error"].__setitem__(
                "code", "decode_failed"),
            "pending with k values": lambda r: image(r, "pending").__setitem__("k", [2]),
            "ok with an error": lambda r: image(r, "ok").__setitem__(
                "error", {"code": "pending", "message": "x"}),
            "k 0": lambda r: image(r, "ok")["k"].__setitem__(0, 0),
            "negative threads": lambda r: r.__setitem__("threads", -1),
            "started_utc not UTC": lambda r: r.__setitem__("started_utc", "2025-01-01 10:00"),
            "unknown elbow method": lambda r: r["jobs"][0]["elbow"].__setitem__("method", "x"),
        }
        for what, change in breaks.items():
            doc = copy.deepcopy(run)
            change(doc)
            self.assert_invalid(doc, "run", what)


if __name__ == "__main__":
    unittest.main()
