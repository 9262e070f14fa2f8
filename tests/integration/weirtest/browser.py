"""weirtest.browser — headless Chromium for the status page and the
dashboard, and a small PNG decoder to read the pixels of its screenshots.
"""
import shutil
import struct
import subprocess
import tempfile
import zlib


def png_pixels(path):
    """Decode a non-interlaced 8-bit RGB/RGBA PNG (what Chromium writes) with
    zlib. Returns (width, height, rows), each row a list of (r, g, b)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif typ == b"IDAT":
            idat += chunk
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("unsupported PNG: depth %d colour type %d" % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        ftype = raw[i]
        cur = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                cur[x] = (cur[x] + a) & 255
            elif ftype == 2:
                cur[x] = (cur[x] + b) & 255
            elif ftype == 3:
                cur[x] = (cur[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (cur[x] + pr) & 255
        rows.append([tuple(cur[k:k + 3]) for k in range(0, stride, bpp)])
        prev = cur
    return w, h, rows


CHROMIUM = "/usr/bin/chromium"


def chromium(url, screenshot=None, dump_dom=False, size=(1200, 900), timeout=90, budget_ms=None):
    """Run headless Chromium on url: take a screenshot to the given path, or
    return the DOM after load (dump_dom). Returns (exit code, stdout text)."""
    profile = tempfile.mkdtemp(prefix="weirtest-chromium-")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile,
            "--window-size=%d,%d" % size]
    if budget_ms:
        argv.append("--virtual-time-budget=%d" % budget_ms)
    if screenshot:
        argv.append("--screenshot=" + screenshot)
    if dump_dom:
        argv.append("--dump-dom")
    argv.append(url)
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=timeout, cwd=profile)
        return r.returncode, r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        shutil.rmtree(profile, ignore_errors=True)
