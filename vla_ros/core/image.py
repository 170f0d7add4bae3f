"""sensor_msgs/Image and CompressedImage fields <-> numpy arrays, without cv_bridge.

Colour comes out as (H, W, 3) uint8 RGB; depth as (H, W) float32 metres (16UC1 millimetres are scaled,
32FC1 is taken as metres). Row padding (`step` > width * bytes per pixel) and `is_bigendian` are honoured.
When the layout allows, the result is a zero-copy view of `data` (rgb8, mono8, 32FC1 little-endian):
callers that keep it beyond the message's life must copy.
"""
from __future__ import annotations

import io
import sys

import numpy as np

# encoding -> (channels, numpy dtype of one channel)
ENCODINGS = {
    "rgb8": (3, np.uint8), "bgr8": (3, np.uint8), "rgba8": (4, np.uint8), "bgra8": (4, np.uint8),
    "mono8": (1, np.uint8), "8UC1": (1, np.uint8), "mono16": (1, np.uint16), "16UC1": (1, np.uint16),
    "32FC1": (1, np.float32),
}
COLOUR = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1", "mono16")
DEPTH = ("16UC1", "32FC1", "mono16")
MM_PER_M = 1000.0


class ImageFormatError(ValueError):
    """An Image/CompressedImage field is inconsistent; the message names the field."""


def raw_view(encoding: str, height: int, width: int, step: int, is_bigendian: bool, data) -> np.ndarray:
    """(H, W, C) view of the pixel buffer in native byte order (copies only when byte-swapping)."""
    if encoding not in ENCODINGS:
        raise ImageFormatError(f"encoding: unsupported {encoding!r}; expected one of {sorted(ENCODINGS)}")
    channels, dtype = ENCODINGS[encoding]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if height <= 0 or width <= 0:
        raise ImageFormatError(f"height/width: image is empty ({height}x{width})")
    if step < row_bytes:
        raise ImageFormatError(f"step: {step} is smaller than width*channels*bytes = {row_bytes} for {encoding}")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    if buf.size != step * height:
        raise ImageFormatError(f"data: length {buf.size} != step*height = {step}*{height} = {step * height}")
    rows = buf.reshape(height, step)[:, :row_bytes]
    if itemsize == 1:
        return rows.reshape(height, width, channels)
    typed = rows.view(np.dtype(dtype).newbyteorder(">" if is_bigendian else "<"))
    if bool(is_bigendian) != (sys.byteorder == "big"):
        typed = typed.astype(np.dtype(dtype).newbyteorder("="))
    return typed.reshape(height, width, channels)


def image_to_array(encoding: str, height: int, width: int, step: int, is_bigendian: bool, data) -> np.ndarray:
    """Colour encodings -> (H, W, 3) uint8 RGB; depth encodings (16UC1, 32FC1) -> (H, W) float32 metres."""
    if encoding in ("16UC1", "32FC1"):
        return depth_to_metres(encoding, height, width, step, is_bigendian, data)
    return colour_to_rgb(encoding, height, width, step, is_bigendian, data)


def colour_to_rgb(encoding: str, height: int, width: int, step: int, is_bigendian: bool, data) -> np.ndarray:
    if encoding not in COLOUR:
        raise ImageFormatError(f"encoding: {encoding!r} is not a colour encoding; expected one of {COLOUR}")
    px = raw_view(encoding, height, width, step, is_bigendian, data)
    if encoding == "rgb8":
        return px
    if encoding == "bgr8":
        return px[..., ::-1]
    if encoding == "rgba8":
        return px[..., :3]
    if encoding == "bgra8":
        return px[..., 2::-1]
    if encoding == "mono16":
        px = (px >> 8).astype(np.uint8)
    return np.broadcast_to(px, (height, width, 3))


def depth_to_metres(encoding: str, height: int, width: int, step: int, is_bigendian: bool, data) -> np.ndarray:
    """16UC1/mono16 (millimetres) or 32FC1 (metres) -> (H, W) float32 metres; invalid stays 0 or NaN."""
    if encoding not in DEPTH:
        raise ImageFormatError(f"encoding: {encoding!r} is not a depth encoding; expected one of {DEPTH}")
    px = raw_view(encoding, height, width, step, is_bigendian, data)[..., 0]
    if encoding == "32FC1":
        return px
    return np.multiply(px, np.float32(1.0 / MM_PER_M), dtype=np.float32)


def depth_and_validity(encoding: str, height: int, width: int, step: int, is_bigendian: bool, data
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Depth in metres with invalid pixels set to 0, and the validity mask, in as few passes as possible:
    16UC1 cannot hold NaN, so its mask is just `!= 0`."""
    if encoding in ("16UC1", "mono16"):
        px = raw_view(encoding, height, width, step, is_bigendian, data)[..., 0]
        return np.multiply(px, np.float32(1.0 / MM_PER_M), dtype=np.float32), px != 0
    from vla_ros.core.depth import clean_depth

    return clean_depth(depth_to_metres(encoding, height, width, step, is_bigendian, data))


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict:
    """Encode an array as Image fields (height, width, encoding, is_bigendian, step, data bytes).

    rgb8/bgr8/rgba8/bgra8/mono8 take uint8 RGB(A) input (colour order is converted); 16UC1 takes metres
    (float) or millimetres (uint16); 32FC1 takes metres.
    """
    a = np.asarray(array)
    if encoding in ("16UC1", "mono16"):
        a = a if a.dtype == np.uint16 else np.nan_to_num(np.round(a * MM_PER_M), nan=0.0).clip(0, 65535).astype(
            np.uint16)
    elif encoding == "32FC1":
        a = a.astype(np.float32)
    elif encoding == "bgr8":
        a = a[..., ::-1]
    elif encoding == "bgra8":
        a = a[..., [2, 1, 0, 3]] if a.shape[-1] == 4 else np.concatenate([a[..., ::-1], np.full_like(a[..., :1], 255)],
                                                                         -1)
    elif encoding == "rgba8" and a.shape[-1] == 3:
        a = np.concatenate([a, np.full_like(a[..., :1], 255)], -1)
    elif encoding in ("mono8", "8UC1") and a.ndim == 3:
        a = a.mean(-1).astype(np.uint8)
    if encoding not in ENCODINGS:
        raise ImageFormatError(f"encoding: unsupported {encoding!r}")
    a = np.ascontiguousarray(a, dtype=ENCODINGS[encoding][1])
    h, w = a.shape[:2]
    return {"height": h, "width": w, "encoding": encoding, "is_bigendian": 0,
            "step": w * ENCODINGS[encoding][0] * a.itemsize, "data": a.tobytes()}


# --- CompressedImage -------------------------------------------------------------------------------------

def _decode(data: bytes, flags: str) -> np.ndarray:
    if len(data) == 0:
        raise ImageFormatError(f"data: empty {flags} payload")
    try:
        import cv2

        buf = np.frombuffer(bytes(data), np.uint8)
        try:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        except cv2.error as exc:
            raise ImageFormatError(f"data: could not decode {flags} image ({str(exc).strip()[-80:]})") from None
        if img is None:
            raise ImageFormatError(f"data: could not decode {flags} image ({len(data)} bytes)")
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        return img
    except ImportError:
        from PIL import Image as PILImage

        try:
            img = PILImage.open(io.BytesIO(bytes(data)))
            img.load()
        except Exception as exc:
            raise ImageFormatError(f"data: could not decode {flags} image ({exc})") from None
        return np.asarray(img.convert("RGB") if img.mode in ("P", "RGBA", "CMYK", "LA") else img)


def compressed_to_array(fmt: str, data) -> np.ndarray:
    """CompressedImage (format, data) -> (H, W, 3) uint8 RGB, or (H, W) float32 metres for compressedDepth.

    `format` as image_transport writes it: "jpeg", "png", "rgb8; jpeg compressed bgr8",
    "16UC1; compressedDepth png", "32FC1; compressedDepth", ...
    """
    f = (fmt or "").lower()
    if "compresseddepth" in f:
        return compressed_depth_to_metres(fmt, data)
    if not any(k in f for k in ("jpeg", "jpg", "png")):
        raise ImageFormatError(f"format: unknown compressed format {fmt!r}; expected jpeg, png or compressedDepth")
    img = _decode(data, f)
    if img.ndim == 2:
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        img = np.repeat(img[..., None], 3, axis=2)
    return img


# compressedDepth: a 12-byte ConfigHeader (int32 format enum, float32 depthQuantA, float32 depthQuantB)
# followed by a PNG. 16UC1 stores millimetres as-is; 32FC1 stores inverse depth quantised as
# value = quantA / depth + quantB, so depth = quantA / (value - quantB); value 0 means invalid.
COMPRESSED_DEPTH_HEADER = np.dtype([("format", "<i4"), ("quant_a", "<f4"), ("quant_b", "<f4")])


def compressed_depth_to_metres(fmt: str, data) -> np.ndarray:
    raw = bytes(data)
    if len(raw) < COMPRESSED_DEPTH_HEADER.itemsize + 8:
        raise ImageFormatError(f"data: compressedDepth payload too short ({len(raw)} bytes)")
    header = np.frombuffer(raw[:COMPRESSED_DEPTH_HEADER.itemsize], COMPRESSED_DEPTH_HEADER)[0]
    png = raw[COMPRESSED_DEPTH_HEADER.itemsize:]
    if not png.startswith(b"\x89PNG"):
        raise ImageFormatError("data: compressedDepth payload is not a PNG after the 12-byte header")
    img = _decode(png, "compressedDepth png")
    if img.dtype != np.uint16 or img.ndim != 2:
        raise ImageFormatError(f"data: compressedDepth PNG must be 16-bit single channel, got {img.dtype} {img.shape}")
    f = fmt.lower()
    if f.startswith("32fc1"):
        value = img.astype(np.float32)
        with np.errstate(divide="ignore"):
            depth = np.where(img > 0, float(header["quant_a"]) / (value - float(header["quant_b"])), 0.0)
        return depth.astype(np.float32)
    return img.astype(np.float32) / MM_PER_M


def encode_compressed_depth(depth_m: np.ndarray, encoding: str = "16UC1", depth_max_m: float = 10.0,
                            depth_quant_a: float = 100.0) -> tuple[str, bytes]:
    """Encode depth the way image_transport's compressedDepth plugin does (for publishers and tests)."""
    import cv2

    d = np.nan_to_num(np.asarray(depth_m, np.float32), nan=0.0)
    if encoding == "16UC1":
        img = np.round(d * MM_PER_M).clip(0, 65535).astype(np.uint16)
        quant_a = quant_b = 0.0
    else:
        quant_a = depth_quant_a
        quant_b = quant_a / depth_max_m
        with np.errstate(divide="ignore"):
            img = np.where(d > 0, quant_a / d + quant_b, 0).clip(0, 65535).astype(np.uint16)
    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise ImageFormatError("data: PNG encoding failed")
    header = np.array([(0, quant_a, quant_b)], COMPRESSED_DEPTH_HEADER).tobytes()
    return f"{encoding}; compressedDepth png", header + png.tobytes()
