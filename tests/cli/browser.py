"""A headless Chromium driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages ending in NUL on fds 3 and 4), so
that tests and bench scripts need nothing beyond the chromium package.

    with Browser() as b:
        b.open("file:///.../index.html", width=1400, height=900)
        value = b.eval("document.title")
        png = b.screenshot()

CHROMIUM names the binary (default: chromium on PATH, then
/usr/bin/chromium); `available()` says whether there is one.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


def chromium_path():
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def available():
    return chromium_path() is not None


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, timeout=60.0):
        path = chromium_path()
        if not path:
            raise BrowserError("no chromium")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="kmq-chromium-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def wire():
            # dup2 onto itself keeps close-on-exec: clear it explicitly.
            for fd, want in ((to_child_r, 3), (from_child_w, 4)):
                if fd != want:
                    os.dup2(fd, want)
                os.set_inheritable(want, True)

        self.proc = subprocess.Popen(
            [path, "--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
             "--mute-audio", "--allow-file-access-from-files", "about:blank"],
            preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.next_id = 0
        self.pending = b""
        self.events = []
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True}, session=False)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    # ---- protocol ---------------------------------------------------------

    def _read_message(self, deadline):
        while b"\0" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("chromium did not answer in time")
            ready, _, _ = select.select([self.from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed the pipe")
            self.pending += chunk
        message, self.pending = self.pending.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=True, timeout=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, e in enumerate(self.events):
                if e["method"] == method:
                    del self.events[i]
                    return e.get("params", {})
            self.events.append(self._read_message(deadline))

    # ---- pages ------------------------------------------------------------

    def open(self, url, width=1400, height=900):
        """Loads url at a viewport of width x height CSS pixels; returns
        the seconds from navigation to the load event."""
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        t0 = time.monotonic()
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        return time.monotonic() - t0

    def eval(self, expression, timeout=None):
        """The value of a JavaScript expression (a promise is awaited)."""
        result = self.call("Runtime.evaluate",
                           {"expression": expression, "awaitPromise": True,
                            "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            raise BrowserError("script failed: %s" % json.dumps(result["exceptionDetails"])[:2000])
        return result["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# JavaScript helpers the checks share; each is an expression.

# Resolves when every image inside the viewport has loaded and decoded;
# gives {ms: performance.now() then, visible, broken: [src]}.
VISIBLE_IMAGES_DECODED = r"""
(async () => {
  const inView = img => { const r = img.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 &&
           r.top < innerHeight && r.left < innerWidth; };
  for (;;) {
    const imgs = [...document.images].filter(inView);
    if (imgs.every(i => i.complete)) {
      await Promise.all(imgs.map(i => i.decode().catch(() => null)));
      return {ms: performance.now(), visible: imgs.length,
              broken: imgs.filter(i => !i.naturalWidth).map(i => i.src)};
    }
    await new Promise(r => setTimeout(r, 10));
  }
})()
"""

# Every link and image of the page: {links: [href], images: [src]}.
LINKS_AND_IMAGES = r"""
({links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  images: [...document.images].map(i => i.src)})
"""

# Loads every image of the page (lazy ones too, through new Image()):
# the sources that do not decode.
ALL_IMAGES_DECODE = r"""
(async () => {
  const srcs = [...new Set([...document.images].map(i => i.src))];
  const bad = [];
  await Promise.all(srcs.map(src => new Promise(done => {
    const im = new Image();
    im.onload = () => im.decode().then(() => done(), () => { bad.push(src); done(); });
    im.onerror = () => { bad.push(src); done(); };
    im.src = src;
  })));
  return bad;
})()
"""

# Pairs of text boxes (text nodes, HTML and SVG) that overlap by more than
# a pixel each way: [[text, text], ...]. Texts hidden or clipped to nothing
# are left out.
OVERLAPPING_TEXT = r"""
(() => {
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const el = n.parentElement;
    if (!el || el.closest('script,style,noscript,title')) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden' || cs.display === 'none') continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const r of range.getClientRects())
      if (r.width > 0.5 && r.height > 0.5)
        boxes.push({t: n.textContent.trim().slice(0, 40), n: boxes.length, node: n,
                    l: r.left + scrollX, r: r.right + scrollX,
                    top: r.top + scrollY, b: r.bottom + scrollY});
  }
  boxes.sort((a, b) => a.top - b.top);
  const out = [];
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length && boxes[j].top < boxes[i].b - 1; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.node === b.node) continue;
      const x = Math.min(a.r, b.r) - Math.max(a.l, b.l);
      const y = Math.min(a.b, b.b) - Math.max(a.top, b.top);
      if (x > 1 && y > 1) out.push([a.t, b.t]);
    }
  return out;
})()
"""
