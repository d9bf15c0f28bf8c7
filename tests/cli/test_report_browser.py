"""The report in a browser (headless Chromium over the DevTools protocol,
tests/cli/browser.py), on a run of 72 images: generated ones, two photos,
a broken file, a hostile and a very long name.

  - every link and image of the overview, on every page of its table, and
    of a sample of image pages: each link's target exists, each image loads
    and decodes (lazy ones too);
  - sorting (numbers, names, nulls last, both directions), filtering (text
    and status) and paging of the table, against run.json;
  - screenshots at 1400 and 800 px wide, and no two pieces of text overlap
    there (bounding boxes of every text node, HTML and SVG alike).

Skipped, saying so, when Chromium is absent (scripts/setup.sh installs it)."""
import os
import shutil
import unittest
import urllib.parse

import numpy as np
from PIL import Image

import browser
import kmqtest as kt

LONG_NAME = "a-very-long-file-name-" + "without-any-break-" * 6 + "end.png"
HOSTILE = "odd #?%& name <b>.png"

ROWS = """[...document.querySelectorAll('#images tbody tr')].map(tr =>
  [...tr.cells].map(td => td.textContent))"""


def click(selector):
    return f"document.querySelector({selector!r}).click()"


def set_filter(text, status):
    return f"""(() => {{
  const q = document.getElementById('filter'), s = document.getElementById('status');
  q.value = {text!r}; q.dispatchEvent(new Event('input'));
  s.value = {status!r}; s.dispatchEvent(new Event('change'));
  return document.getElementById('count').textContent;
}})()"""


def number(cell):
    """A table cell's number ("31.20 dB", "12.3 kB"...), None for a dash."""
    text = cell.split("(")[0].strip().replace("\u2009", "")
    if text in ("\u2013", ""):
        return None
    if text == "lossless":
        return float("inf")
    value, *unit = text.split()
    scale = {"kB": 1e3, "MB": 1e6}.get(unit[0] if unit else "", 1)
    return float(value.rstrip("\u00d7")) * scale


@unittest.skipUnless(browser.available(), "chromium is absent (install Debian's chromium "
                     "package, as scripts/setup.sh does); the browser checks did not run")
class ReportInBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = kt.fresh_dir("report_browser")
        inp = os.path.join(cls.dir, "in")
        os.makedirs(inp)
        rng = np.random.default_rng(3)
        for i in range(66):
            w, h = int(rng.integers(24, 90)), int(rng.integers(24, 90))
            base = rng.integers(0, 256, 3)
            img = np.clip(base + rng.normal(0, 30 + i, (h, w, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img, "RGB").save(os.path.join(inp, f"noise{i:02d}.png"))
        for name in ("china.jpg", "coffee.png"):
            shutil.copy(os.path.join(kt.PHOTOS, name), inp)
        shutil.copy(os.path.join(kt.PHOTOS, "astronaut.png"), os.path.join(inp, LONG_NAME))
        shutil.copy(os.path.join(kt.PHOTOS, "chelsea_alpha.png"), os.path.join(inp, HOSTILE))
        with open(os.path.join(inp, "broken.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\nnot really")
        Image.new("RGB", (20, 20), (9, 9, 9)).save(os.path.join(inp, "flat.png"))
        job = kt.write_job(os.path.join(cls.dir, "job.ini"), """
[run]
output = out
[defaults]
k = 2, 4, 8
restarts = 1
[job photos]
input = in
""")
        kt.run("run", job, "--quiet", check_code=1)
        cls.out = os.path.join(cls.dir, "out")
        cls.run_doc = kt.load_json(os.path.join(cls.out, "run.json"))
        cls.url = "file://" + urllib.parse.quote(os.path.join(cls.out, "index.html"))
        cls.b = browser.Browser()

    @classmethod
    def tearDownClass(cls):
        cls.b.close()

    def open(self, url=None, width=1400):
        self.b.open(url or self.url, width=width, height=900)
        return self.b.eval(browser.VISIBLE_IMAGES_DECODED)

    def check_links_and_images(self, where):
        facts = self.b.eval(browser.LINKS_AND_IMAGES)
        for link in facts["links"] + facts["images"]:
            self.assertTrue(link.startswith("file:"), f"{where}: non-local {link}")
            path = urllib.parse.unquote(urllib.parse.urlparse(link).path)
            self.assertTrue(os.path.isfile(path), f"{where}: missing {link}")
        self.assertEqual(self.b.eval(browser.ALL_IMAGES_DECODE), [], where)
        return facts

    def test_every_link_and_image(self):
        self.open()
        pages, detail = 0, set()
        while True:
            pages += 1
            facts = self.check_links_and_images(f"overview page {pages}")
            detail |= {l for l in facts["links"] if l.endswith("/index.html")}
            if self.b.eval("document.getElementById('next').disabled"):
                break
            self.b.eval(click("#next"))
        self.assertEqual(pages, 2)  # 72 images, 50 a page
        ok = [im for im in self.run_doc["images"] if im["status"] == "ok"]
        self.assertEqual(len(detail), len(ok))  # a page per ok image, each linked
        sample = sorted(detail)[::20] + [l for l in detail if "odd" in l or "very-long" in l]
        for link in sample:
            for width in (1400, 800):
                self.open(link, width)
                self.check_links_and_images(link)
                self.assertEqual(self.b.eval(browser.OVERLAPPING_TEXT), [], (link, width))

    def test_screenshots_without_overlapping_text(self):
        for width in (1400, 800):
            state = self.open(width=width)
            self.assertEqual(state["broken"], [])
            if width == 1400:  # the table starts within the first screen
                self.assertGreater(state["visible"], 0)
            self.assertEqual(self.b.eval(browser.OVERLAPPING_TEXT), [], width)
            shot = os.path.join(self.dir, f"overview-{width}.png")
            self.b.screenshot(shot)
            with Image.open(shot) as im:
                self.assertEqual(im.size, (width, 900))
            # The part with the table, too.
            self.b.eval("document.getElementById('images').scrollIntoView()")
            self.b.eval(browser.VISIBLE_IMAGES_DECODED)
            self.b.screenshot(os.path.join(self.dir, f"overview-table-{width}.png"))

    def test_sorting(self):
        self.open()
        self.b.eval(set_filter("", ""))
        self.b.eval(click("#images th[data-col='8']"))  # PSNR, ascending
        values = [number(r[5]) for r in self.b.eval(ROWS)]
        known = [v for v in values if v is not None]
        self.assertEqual(known, sorted(known))
        self.assertEqual(values[:len(known)], known)  # nulls last
        self.b.eval(click("#images th[data-col='8']"))  # descending
        values = [number(r[5]) for r in self.b.eval(ROWS)]
        known = [v for v in values if v is not None]
        self.assertEqual(known, sorted(known, reverse=True))
        self.assertEqual(self.b.eval(
            "document.querySelector(\"#images th[data-col='8']\").getAttribute('aria-sort')"),
            "descending")
        self.b.eval(click("#images th[data-col='1']"))  # names
        names = [r[1] for r in self.b.eval(ROWS)]
        every = sorted((im["rel"] for im in self.run_doc["images"]), key=str.lower)
        self.assertEqual([n.rsplit("photos", 1)[0] for n in names], every[:50])
        self.b.eval(click("#images th[data-col='9']"))  # PNG bytes
        values = [number(r[6]) for r in self.b.eval(ROWS)]
        known = [v for v in values if v is not None]
        self.assertEqual(known, sorted(known))

    def test_filtering_and_paging(self):
        self.open()
        total = len(self.run_doc["images"])
        self.assertEqual(self.b.eval(set_filter("", "")), f"{total} of {total} images")
        self.assertEqual(len(self.b.eval(ROWS)), 50)
        want = [im["rel"] for im in self.run_doc["images"] if "noise1" in im["rel"].lower()]
        self.assertEqual(self.b.eval(set_filter("NOISE1", "")), f"{len(want)} of {total} images")
        self.assertEqual([r[1].rsplit("photos", 1)[0] for r in self.b.eval(ROWS)], want)
        failed = [im["rel"] for im in self.run_doc["images"] if im["status"] == "error"]
        self.assertEqual(self.b.eval(set_filter("", "error")),
                         f"{len(failed)} of {total} images")
        rows = self.b.eval(ROWS)
        self.assertEqual([r[1].rsplit("photos", 1)[0] for r in rows], failed)
        self.assertEqual({r[-1] for r in rows}, {"error"})
        self.assertEqual(self.b.eval(set_filter("", "ok")),
                         f"{total - len(failed)} of {total} images")
        self.b.eval(set_filter("", ""))
        self.b.eval(click("#next"))
        self.assertEqual(len(self.b.eval(ROWS)), total - 50)
        self.assertEqual(self.b.eval("document.getElementById('page').textContent"),
                         "page 2 of 2")


if __name__ == "__main__":
    unittest.main(verbosity=2)
