"""Hostile files built in code, for the tests (tests/cli/test_untrusted.py)
and the benchmark (bench/hostile.sh): files whose content is not what their
name says, and decompression bombs of a few hundred bytes. Standard library
and Pillow only; nothing here runs kmq."""
import base64
import os
import struct
import zlib

from PIL import Image

# A lossless WebP whose canvas is 16000 x 16000 (246 bytes): made with
# `vips black big.webp[lossless,effort=0] 16000 16000`; decoding it takes
# a 1 GiB frame.
WEBP_16K = base64.b64decode(
    "UklGRu4AAABXRUJQVlA4WAoAAAAIAAAAfz4Afz4AVlA4TA4AAAAvf/6fDwcQEf0PRET/A0VYSUa6AAAARXhpZgAASUkq"
    "AAgAAAAGABIBAwABAAAAAQAAABoBBQABAAAAVgAAABsBBQABAAAAXgAAACgBAwABAAAAAgAAABMCAwABAAAAAQAAAGmH"
    "BAABAAAAZgAAAAAAAAA4YwAA6AMAADhjAADoAwAABgAAkAcABAAAADAyMTABkQcABAAAAAECAwAAoAcABAAAADAxMDAB"
    "oAMAAQAAAP//AAACoAQAAQAAAIA+AAADoAQAAQAAAIA+AAAAAAAA")


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png_bytes(width, height, raw_rows, interlace=0):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(raw_rows, 9)) + png_chunk(b"IEND", b""))


def encode(src, path, **opts):
    """Saves the image at src to path with PIL (format from the suffix)."""
    Image.open(src).convert("RGB").save(path, **opts)
    with open(path, "rb") as f:
        return f.read()


def patch_jpeg_size(data, width, height):
    """Rewrites the frame header (SOF0 or SOF2) to declare width x height."""
    data = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        i = data.find(marker)
        if i >= 0:
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no frame header")


def with_comment_padding(jpeg, nbytes):
    """The JPEG with COM segments of nbytes in all after its SOI: longer, same pixels."""
    pad = b""
    while len(pad) < nbytes:
        pad += b"\xff\xfe" + struct.pack(">H", 65535) + b"\x00" * 65533
    return jpeg[:2] + pad + jpeg[2:]


def disguised():
    """name -> (bytes, words the refusal must hold: the real format's name)."""
    files = {}

    def put(name, data):
        files[name] = data

    words = {}
    put("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="20000">'
        b'<rect width="10" height="10"/></svg>\n')
    words["svg.png"] = "'svg'"
    put("pdf.jpg", b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type"
        b"/Pages/Kids[3 0 R]/Count 1>>endobj 3 0 obj<</Type/Page/MediaBox[0 0 20000 20000]"
        b"/Parent 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
    words["pdf.jpg"] = "'pdf'"
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8",
             "NAXIS   =                    2", "NAXIS1  =                20000",
             "NAXIS2  =                20000", "END"]
    fits = b"".join(c.ljust(80).encode() for c in cards).ljust(2880, b" ")
    put("fits.tif", fits + bytes(2880))
    words["fits.tif"] = "'fits'"
    put("exr.png", b"\x76\x2f\x31\x01\x02\x00\x00\x00" + b"channels\x00chlist\x00" * 4)
    words["exr.png"] = "'openexr'"
    put("mat.jpg", b"MATLAB 5.0 MAT-file, Platform: GLNXA64".ljust(116, b" ") + bytes(8) +
        b"\x00\x01IM")
    words["mat.jpg"] = "'mat'"
    put("csv.png", b"1,2,3\n4,5,6\n" * 100)
    words["csv.png"] = "text"
    row = b"\x00\x00\xff" * 4
    bmp = (b"BM" + struct.pack("<IHHI", 54 + 48, 0, 0, 54) +
           struct.pack("<IiiHHIIiiII", 40, 4, 4, 1, 24, 0, 48, 2835, 2835, 0, 0) + row * 4)
    put("bmp.tif", bmp)  # only ImageMagick reads BMP here
    words["bmp.tif"] = "BMP"
    put("txt.jpg", b"# ImageMagick pixel enumeration: 16000,16000,255,srgb\n0,0: (1,2,3)\n")
    words["txt.jpg"] = "'magick'"


    return {name: (data, words[name]) for name, data in files.items()}


def bombs(workdir):
    """name -> (bytes, expected error code, words in the message). Builds
    small real JPEG and GIF files in workdir to patch."""
    small = os.path.join(workdir, "small.png")
    Image.new("RGB", (16, 16), (10, 20, 30)).save(small)
    prog = encode(small, os.path.join(workdir, "p.jpg"), progressive=True)
    base = encode(small, os.path.join(workdir, "b.jpg"))
    gif = encode(small, os.path.join(workdir, "s.gif"))
    g = bytearray(gif)
    g[6:10] = struct.pack("<HH", 10000, 10000)  # screen
    i = g.index(b"\x2c")  # image descriptor
    g[i + 5:i + 9] = struct.pack("<HH", 10000, 10000)
    bombs = {
        # name: (bytes, code, words)
        "prog.jpg": (patch_jpeg_size(prog, 32000, 31000), "decode_failed", "too short"),
        "base.jpg": (patch_jpeg_size(base, 30000, 30000), "decode_failed", "too short"),
        # Long enough to hold its pixels by the length rule, yet a
        # progressive JPEG keeps all its coefficients: the budget says no.
        "padded.jpg": (with_comment_padding(patch_jpeg_size(prog, 32000, 31000), 200000),
                       "too_large", "max_decode_bytes"),
        "canvas.webp": (WEBP_16K, "too_large", "max_decode_bytes"),
        "screen.gif": (bytes(g), "too_large", "max_decode_bytes"),
        "adam7.png": (png_bytes(30000, 30000, b"\x00" * 64, interlace=1), "too_large",
                      "max_decode_bytes"),
    }
    return bombs


def one_pixel_png():
    return png_bytes(1, 1, b"\x00\x10\x20\x30")
