"""A tiny dependency-free PNG scatter/line plot (used when kaleido is not installed).

Draws axes with tick marks and one coloured polyline with point markers per series on a white
canvas, then encodes it as an RGB PNG with zlib. No text rendering: the HTML plot carries the
labels; the PNG is a quick-look image.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def encode_png(img: np.ndarray) -> bytes:
    """``img``: ``[h, w, 3]`` uint8."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + \
            struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _line(img, x0, y0, x1, y1, colour):
    n = int(max(abs(x1 - x0), abs(y1 - y0), 1))
    xs = np.linspace(x0, x1, n + 1).round().astype(int)
    ys = np.linspace(y0, y1, n + 1).round().astype(int)
    ok = (xs >= 0) & (xs < img.shape[1]) & (ys >= 0) & (ys < img.shape[0])
    img[ys[ok], xs[ok]] = colour


def scatter_png(series: dict[str, list[tuple[float, float]]], width: int = 640,
                height: int = 420) -> bytes:
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    left, right, top, bottom = 50, width - 20, 20, height - 40
    pts = [p for s in series.values() for p in s]
    xs = [p[0] for p in pts] or [0.0, 1.0]
    ys = [p[1] for p in pts] or [0.0, 1.0]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(min(ys), 0.0), max(ys)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    y_hi = y_hi if y_hi > y_lo else y_lo + 1

    def px(x, y):
        return (left + (x - x_lo) / (x_hi - x_lo) * (right - left),
                bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))

    black = (0, 0, 0)
    _line(img, left, bottom, right, bottom, black)
    _line(img, left, bottom, left, top, black)
    for i in range(6):
        tx = left + i * (right - left) / 5
        ty = bottom - i * (bottom - top) / 5
        _line(img, tx, bottom, tx, bottom + 5, black)
        _line(img, left - 5, ty, left, ty, black)
    for k, (_, s) in enumerate(sorted(series.items())):
        colour = PALETTE[k % len(PALETTE)]
        s = sorted(s)
        for a, b in zip(s, s[1:]):
            _line(img, *px(*a), *px(*b), colour)
        for x, y in s:
            cx, cy = (int(round(v)) for v in px(x, y))
            img[max(cy - 3, 0):cy + 4, max(cx - 3, 0):cx + 4] = colour
        # legend swatch per series, top right
        img[top + 12 * k:top + 12 * k + 8, right - 30:right - 10] = colour
    return encode_png(img)
