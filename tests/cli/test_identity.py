"""What resume takes for "the same image" (job key identity): with quick
(the default) size, mtime, inode and the first and last 64 KiB; with
content every byte. A file swapped for another of the same size and mtime
is redone, an unchanged one is skipped, and an edit in the middle that
keeps size and mtime is caught by content only (quick is documented to
miss it)."""
import os
import shutil
import subprocess
import unittest

import kmqtest as kt

WIDTH, HEIGHT = 320, 320  # 300 KiB of pixels: the middle is outside both 64 KiB ends


def ppm_bytes(seed):
    """A binary PPM of WIDTH x HEIGHT: the same size for every seed, pixels
    after a short header, so a byte at a given offset is one channel."""
    header = b"P6\n%d %d\n255\n" % (WIDTH, HEIGHT)
    rows = []
    for y in range(HEIGHT):
        row = bytes(((x * 7 + seed * 31) % 256, (y * 5 + seed * 17) % 256,
                     ((x + y) * 3 + seed * 59) % 256)[c] for x in range(WIDTH) for c in range(3))
        rows.append(row)
    return header + b"".join(rows)


def write_bytes(path, data):
    """Writes in place (same inode when the file exists)."""
    with open(path, "r+b" if os.path.exists(path) else "wb") as f:
        f.write(data)
        f.truncate()


class Identity(unittest.TestCase):
    def setUp(self):
        self.dir = kt.fresh_dir("identity")
        self.inp = os.path.join(self.dir, "in")
        os.makedirs(self.inp)
        self.a = os.path.join(self.inp, "a.ppm")
        self.b = os.path.join(self.inp, "b.ppm")
        write_bytes(self.a, ppm_bytes(1))
        write_bytes(self.b, ppm_bytes(2))
        self.out = os.path.join(self.dir, "out")
        self.write_job("quick")

    def write_job(self, identity):
        line = f"identity = {identity}\n" if identity != "quick" else ""
        self.job = kt.write_job(os.path.join(self.dir, "job.ini"), f"""
[run]
output = out
[defaults]
k = 2, 3
restarts = 1
max_iter = 20
formats = ppm
{line}[job j]
input = in/a.ppm, in/b.ppm
""")

    def run_job(self, done, skipped):
        proc = kt.run("run", self.job, "--threads", "2")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(f"2 images: {done} done, {skipped} already done, 0 failed", proc.stderr)
        return proc

    def summary(self, name):
        return kt.load_json(os.path.join(self.out, "j", name, "summary.json"))

    def keep_mtime(self, path):
        """A copy of path with its mtime (cp -p), for touch -r later."""
        ref = os.path.join(self.dir, os.path.basename(path) + ".ref")
        shutil.copy2(path, ref)
        return ref

    def touch_r(self, ref, path):
        subprocess.run(["touch", "-r", ref, path], check=True)

    def assert_same_stat(self, before, path, same_inode):
        after = os.stat(path)
        self.assertEqual((after.st_size, after.st_mtime_ns), (before.st_size, before.st_mtime_ns))
        self.assertEqual(after.st_ino == before.st_ino, same_inode)

    def test_unchanged_files_are_skipped(self):
        self.run_job(2, 0)
        first = self.summary("a.ppm")
        self.assertEqual(first["config"]["identity"], "quick")
        self.run_job(0, 2)
        self.assertEqual(self.summary("a.ppm"), first)
        # Reading a file for its identity changes nothing that counts.
        self.run_job(0, 2)

    def test_swap_in_place_with_touch_r_is_redone(self):
        self.run_job(2, 0)
        before = os.stat(self.a)
        ref = self.keep_mtime(self.a)
        old = self.summary("a.ppm")
        write_bytes(self.a, ppm_bytes(3))  # another image, same size, same inode
        self.touch_r(ref, self.a)
        self.assert_same_stat(before, self.a, same_inode=True)
        self.run_job(1, 1)
        new = self.summary("a.ppm")
        self.assertNotEqual(new["config"]["hash"], old["config"]["hash"])
        self.assertNotEqual(new["results"][0]["palette"], old["results"][0]["palette"])
        self.run_job(0, 2)

    def test_mv_of_another_file_is_redone(self):
        self.run_job(2, 0)
        before = os.stat(self.a)
        staged = os.path.join(self.dir, "staged.ppm")
        write_bytes(staged, ppm_bytes(4))
        self.touch_r(self.a, staged)
        os.rename(staged, self.a)  # a new inode, same size and mtime
        self.assert_same_stat(before, self.a, same_inode=False)
        self.run_job(1, 1)
        self.run_job(0, 2)

    def test_mv_of_a_copy_counts_only_in_quick_mode(self):
        # The same bytes under a new inode: quick redoes the image (the
        # inode is part of its identity), content does not (only the bytes).
        for identity, done in (("quick", 1), ("content", 0)):
            with self.subTest(identity=identity):
                self.write_job(identity)
                self.run_job(2, 0)
                before = os.stat(self.a)
                staged = os.path.join(self.dir, "copy.ppm")
                shutil.copy2(self.a, staged)
                os.rename(staged, self.a)
                self.assert_same_stat(before, self.a, same_inode=False)
                self.run_job(done, 2 - done)
                shutil.rmtree(self.out)

    def test_edit_in_the_middle(self):
        # One pixel in the middle changed in place, size and mtime kept:
        # outside the 64 KiB that quick reads at each end, so quick misses
        # it (documented), and content catches it.
        size = os.path.getsize(self.a)
        middle = size // 2
        self.assertGreater(middle, 64 * 1024)
        self.assertLess(middle, size - 64 * 1024)
        for identity, done in (("quick", 0), ("content", 1)):
            with self.subTest(identity=identity):
                self.write_job(identity)
                write_bytes(self.a, ppm_bytes(1))
                self.run_job(2, 0)
                self.assertEqual(self.summary("a.ppm")["config"]["identity"], identity)
                before = os.stat(self.a)
                ref = self.keep_mtime(self.a)
                with open(self.a, "r+b") as f:
                    f.seek(middle)
                    byte = f.read(1)
                    f.seek(middle)
                    f.write(bytes([byte[0] ^ 0xff]))
                self.touch_r(ref, self.a)
                self.assert_same_stat(before, self.a, same_inode=True)
                self.run_job(done, 2 - done)
                shutil.rmtree(self.out)

    def test_changing_the_identity_key_redoes(self):
        self.run_job(2, 0)
        self.write_job("content")
        self.run_job(2, 0)
        self.run_job(0, 2)
        proc = kt.run("validate", self.job, check_code=0)
        self.assertRegex(proc.stdout, r"identity +=  *content")


if __name__ == "__main__":
    unittest.main()
