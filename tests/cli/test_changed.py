"""A file that changes between the histogram pass and the map pass fails
with file_changed (never internal, never "ok" with a preview of one
version and PNGs of another) and keeps only its error summary; the next
run redoes it. The run is stopped (SIGSTOP) as soon as its live progress
line says "fit", which comes after the histogram pass and before the map
pass; the file is swapped and the run continued."""
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
import unittest

import kmqtest as kt

FIT = re.compile(r"photo\.ppm fit k=")
MAP = re.compile(r"photo\.ppm map")


def drain(fd):
    """What a stopped writer has already put into the terminal."""
    text = ""
    while select.select([fd], [], [], 0)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        text += data.decode("utf-8", "replace")
    return text


def ppm(width, height, pixels):
    return b"P6\n%d %d\n255\n" % (width, height) + pixels


def flipped(width, height, pixels):
    """The same pixels upside down: the same colours, the same file size."""
    row = width * 3
    return b"".join(pixels[y * row:(y + 1) * row] for y in reversed(range(height)))


def rotated(pixels):
    """Each pixel's channels rotated (r, g, b -> g, b, r): another image of
    the same dimensions whose colours the histogram mostly never saw."""
    out = bytearray(len(pixels))
    out[0::3], out[1::3], out[2::3] = pixels[1::3], pixels[2::3], pixels[0::3]
    return bytes(out)


def replace_by_rename(path, data):
    """A new file (new inode) renamed over path."""
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def rewrite_in_place(path, data):
    """New bytes in the same inode, the mtime a second later (so that even
    a file system with coarse timestamps shows the write)."""
    before = os.stat(path)
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))


class ChangedWhileProcessed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = kt.fresh_dir("changed_decode")
        cls.coffee = kt.vips_decode_rgb(os.path.join(kt.PHOTOS, "coffee.png"), cls.work)
        cls.china = kt.vips_decode_rgb(os.path.join(kt.PHOTOS, "china.jpg"), cls.work)

    def setUp(self):
        self.dir = kt.fresh_dir("changed")
        self.inp = os.path.join(self.dir, "in")
        os.makedirs(self.inp)
        self.photo = os.path.join(self.inp, "photo.ppm")
        self.out = os.path.join(self.dir, "out")
        self.folder = os.path.join(self.out, "j", "photo.ppm")
        self.job = kt.write_job(os.path.join(self.dir, "job.ini"), """
[run]
output = out
[defaults]
k = 2, 4, 8, 16
restarts = 2
save = indexed, labels, palette
; PPM: simple to write by hand, outside the default formats
formats = ppm
[job j]
input = in/photo.ppm
""")

    def original(self):
        return ppm(*self.coffee)

    def run_and_swap(self, mode, swap):
        """Runs the job under a pseudo-terminal, stops it at the first
        "fit", calls swap() and lets it finish. Returns (exit code,
        summary, terminal text). When everything the run had printed by the
        time it stopped shows no map stage, the swap fell between the two
        passes and the result is returned whatever it is; otherwise (the
        run may have passed its last check already) an image that ended ok
        is retried, and the test skipped if that keeps happening."""
        for _ in range(3):
            shutil.rmtree(self.out, ignore_errors=True)
            replace_by_rename(self.photo, self.original())
            master, slave = pty.openpty()
            env = dict(os.environ, KMQ_IMAGE_MODE=mode)
            proc = subprocess.Popen([kt.KMQ, "run", self.job, "--threads", "2"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=slave, env=env)
            os.close(slave)
            text, swapped, between = "", False, False
            try:
                while True:
                    ready, _, _ = select.select([master], [], [], 120)
                    if not ready:
                        break
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        break
                    if not data:
                        break
                    text += data.decode("utf-8", "replace")
                    if not swapped and FIT.search(text):
                        proc.send_signal(signal.SIGSTOP)
                        try:
                            text += drain(master)
                            between = not MAP.search(text)
                            swap()
                        finally:
                            proc.send_signal(signal.SIGCONT)
                        swapped = True
            finally:
                os.close(master)
                code = proc.wait(timeout=600)
            self.assertTrue(swapped or code == 0, text)
            summary = kt.load_json(os.path.join(self.folder, "summary.json"))
            if swapped and (between or summary["status"] == "error"):
                return code, summary, text
            time.sleep(0.1)
        self.skipTest("the run got past its last check before it could be stopped")

    def assert_changed(self, code, summary, text, *words):
        self.assertEqual(code, 1, text)
        self.assertEqual(summary["status"], "error")
        self.assertEqual(summary["error"]["code"], "file_changed", summary["error"])
        message = summary["error"]["message"]
        self.assertIn("the file changed while it was processed (", message)
        self.assertTrue(message.endswith("; run again"), message)
        for w in words:
            self.assertIn(w, message)
        self.assertEqual(summary["results"], [])
        # No mixed output: the failed image keeps its error summary alone.
        self.assertEqual(sorted(os.listdir(self.folder)), ["summary.json"])
        self.assertEqual(kt.temp_files(self.out), [])
        self.assertIn("FAILED (file_changed)", text)
        self.assertEqual(kt.load_json(os.path.join(self.out, "run.json"))["status"], "failures")

    def assert_redone(self):
        proc = kt.run("run", self.job, "--threads", "2")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("1 images: 1 done, 0 already done, 0 failed", proc.stderr)
        s = kt.load_json(os.path.join(self.folder, "summary.json"))
        self.assertEqual(s["status"], "ok")
        self.assertEqual(s["input"]["bytes"], os.path.getsize(self.photo))

    def test_same_colours_renamed_over_it(self):
        # Same colours, same size, new inode: the map pass would label the
        # new rows without complaint, so only the file's stamp can tell.
        # Streamed, the second pass reads the new file; kept whole, it is
        # served from memory; both fail the same way.
        for mode in ("stream", "whole"):
            with self.subTest(mode=mode):
                code, summary, text = self.run_and_swap(
                    mode, lambda: replace_by_rename(self.photo, ppm(
                        self.coffee[0], self.coffee[1], flipped(*self.coffee))))
                self.assert_changed(code, summary, text, "inode ")
                self.assert_redone()

    def test_other_image_written_in_place(self):
        # Other colours in the same dimensions and inode: the streamed map
        # pass meets colours the histogram never saw (once "internal").
        width, height, pixels = self.coffee
        code, summary, text = self.run_and_swap(
            "stream", lambda: rewrite_in_place(self.photo, ppm(width, height, rotated(pixels))))
        self.assert_changed(code, summary, text, "(mtime ")
        self.assertNotIn("size", summary["error"]["message"])
        self.assertNotIn("inode", summary["error"]["message"])
        self.assert_redone()

    def test_other_size_written_in_place(self):
        # Another image of other dimensions (once "decode_failed").
        code, summary, text = self.run_and_swap(
            "stream", lambda: rewrite_in_place(self.photo, ppm(*self.china)))
        before, after = len(self.original()), len(ppm(*self.china))
        self.assert_changed(code, summary, text, f"(size {before} -> {after} bytes, mtime ")
        self.assertNotIn("inode", summary["error"]["message"])
        self.assert_redone()

    def test_removed(self):
        code, summary, text = self.run_and_swap("stream", lambda: os.unlink(self.photo))
        self.assert_changed(code, summary, text, "stat now fails: No such file or directory")


if __name__ == "__main__":
    unittest.main()
