"""Shared helpers for kmq's CLI tests (run by CTest with /usr/bin/python3).

Environment (set by tests/CMakeLists.txt): KMQ_BIN, KMQ_PHOTOS,
KMQ_SOURCE_DIR, KMQ_TEST_TMP.

Every summary.json and run.json a test reads through load_json is checked
against docs/summary.schema.json or docs/run.schema.json (Debian's
python3-jsonschema), so each test also checks the documented format.
"""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

KMQ = os.environ["KMQ_BIN"]
PHOTOS = os.environ["KMQ_PHOTOS"]
SOURCE = os.environ["KMQ_SOURCE_DIR"]
TMP_ROOT = os.environ.get("KMQ_TEST_TMP", tempfile.gettempdir())
SANITIZE = os.environ.get("KMQ_SANITIZE", "0") in ("1", "ON", "TRUE", "true")
BUNDLED = ["astronaut.png", "chelsea_alpha.png", "china.jpg", "coffee.png"]


def fresh_dir(name):
    os.makedirs(TMP_ROOT, exist_ok=True)
    path = os.path.join(TMP_ROOT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def run(*args, check_code=None, timeout=600, env=None):
    """Runs kmq; returns CompletedProcess (text)."""
    proc = subprocess.run([KMQ, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, errors="replace")
    if check_code is not None and proc.returncode != check_code:
        raise AssertionError(
            f"kmq {' '.join(args)} exited {proc.returncode}, expected {check_code}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def write_job(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


SCHEMA_OF = {"summary.json": "summary", "run.json": "run"}  # file name -> docs/NAME.schema.json
_validators = {}


def schema_validator(name):
    """The validator of docs/<name>.schema.json ("summary" or "run"), loaded
    and checked once per process."""
    if name not in _validators:
        try:
            from jsonschema import Draft202012Validator
        except ImportError as e:
            raise RuntimeError("the CLI tests need python3-jsonschema "
                               "(bash scripts/setup.sh --deps)") from e
        with open(os.path.join(SOURCE, "docs", f"{name}.schema.json")) as f:
            schema = json.load(f)
        Draft202012Validator.check_schema(schema)
        _validators[name] = Draft202012Validator(schema)
    return _validators[name]


def validate(doc, name, where="document"):
    """Raises AssertionError listing every place where doc breaks
    docs/<name>.schema.json."""
    errors = sorted(schema_validator(name).iter_errors(doc),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                 for e in errors[:20]]
        raise AssertionError(f"{where} does not match docs/{name}.schema.json:\n" +
                             "\n".join(lines))


def load_json(path):
    """The parsed JSON file; a summary.json or run.json must also match its
    schema in docs/."""
    with open(path) as f:
        doc = json.load(f)
    name = SCHEMA_OF.get(os.path.basename(path))
    if name:
        validate(doc, name, path)
    return doc


def png_chunks(path):
    """(type, data) of every chunk, read with the standard library only."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8].decode("ascii")
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_header(path):
    ihdr = dict(png_chunks(path))["IHDR"]
    width, height, depth, color_type = struct.unpack(">IIBB", ihdr[:10])
    return width, height, depth, color_type


def png_palette(path):
    plte = dict(png_chunks(path))["PLTE"]
    return [tuple(plte[i:i + 3]) for i in range(0, len(plte), 3)]


def vips_decode_rgb(path, workdir):
    """Decodes through libvips (the vips CLI) into a binary PPM and returns
    (width, height, bytes)."""
    out = os.path.join(workdir, "decoded.ppm")
    subprocess.run(["vips", "colourspace", path, out, "srgb"],
                   check=True, capture_output=True)
    with open(out, "rb") as f:
        data = f.read()
    # Header: magic, width, height, maxval, separated by whitespace, with
    # "#" comments (libvips writes one); one whitespace byte before the pixels.
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pixels = data[pos + 1:]
    assert fields[0] == b"P6", fields[0]
    width, height, maxval = int(fields[1]), int(fields[2]), int(fields[3])
    assert maxval == 255
    assert len(pixels) == width * height * 3
    return width, height, pixels


def strip_timings(doc):
    """A copy of a JSON document without wall-clock fields and thread count."""
    if isinstance(doc, dict):
        return {k: strip_timings(v) for k, v in doc.items()
                if k not in ("seconds", "threads", "started_utc", "wall")}
    if isinstance(doc, list):
        return [strip_timings(v) for v in doc]
    return doc


CSV_TIMINGS = ("seconds", "image_seconds")  # elbow.csv columns that vary from run to run


def csv_rows_without_timings(path):
    """elbow.csv as a list of rows (lists of fields) without the timing
    columns, the header first."""
    import csv
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if name not in CSV_TIMINGS]
    return [[row[i] for i in keep] for row in rows]


def start(*args, env=None):
    """Starts kmq in the background (stdout and stderr piped, text); the
    caller waits or signals it (Popen)."""
    return subprocess.Popen([KMQ, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, errors="replace")


def temp_files(root):
    """Paths under root of temporary files left by kmq's atomic writes."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            if name.startswith(".kmq-tmp."):
                found.append(os.path.join(dirpath, name))
    return found


def outputs_by_threads_and_path(workdir, run, files):
    """For the streamed and the whole-image path (KMQ_IMAGE_MODE) at 1, 2
    and 3 threads, calls run(out, threads, env), which writes into `out`,
    and returns {(mode, threads): (the bytes of each of `files` under out,
    what run returned)}: a test then asserts that they are all equal."""
    seen = {}
    for mode in ("stream", "whole"):
        env = dict(os.environ, KMQ_IMAGE_MODE=mode)
        for threads in (1, 2, 3):
            out = os.path.join(workdir, f"{mode}{threads}")
            value = run(out, threads, env)
            data = []
            for name in files:
                with open(os.path.join(out, name), "rb") as f:
                    data.append(f.read())
            seen[(mode, threads)] = (data, value)
    return seen
