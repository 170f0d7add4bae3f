"""msgpack with numpy arrays, in openpi-client's convention (no pickle, ever).

An array travels as a map {b"__ndarray__": True, b"data": raw bytes (C order), b"dtype": dtype.str (e.g. "<f4"),
b"shape": [dims]}; a numpy scalar as {b"__npgeneric__": True, b"data": its Python value, b"dtype": dtype.str}.
Object, void (structured) and complex dtypes are refused both ways, so a message can only ever hold numbers,
strings, bytes, lists and maps.
"""
from __future__ import annotations

import msgpack
import numpy as np

_REFUSED_KINDS = ("V", "O", "c")


class WireFormatError(ValueError):
    """A message that is not valid msgpack or breaks the array convention; the message says what."""


def _check_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind in _REFUSED_KINDS:
        raise WireFormatError(f"dtype {dtype.str!r} (kind {dtype.kind!r}) cannot travel: only numbers and strings")
    return dtype


def encode_numpy(obj):
    """msgpack `default` hook: numpy arrays and scalars -> their map form."""
    if isinstance(obj, np.ndarray):
        _check_dtype(obj.dtype)
        return {b"__ndarray__": True, b"data": np.ascontiguousarray(obj).tobytes(), b"dtype": obj.dtype.str,
                b"shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        _check_dtype(obj.dtype)
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot pack {type(obj).__name__}")


def decode_numpy(obj: dict):
    """msgpack `object_hook`: the map form -> a read-only numpy array or scalar; other maps pass through."""
    if b"__ndarray__" in obj:
        try:
            dtype = _check_dtype(np.dtype(obj[b"dtype"]))
            shape = tuple(int(d) for d in obj[b"shape"])
            data = obj[b"data"]
        except (KeyError, TypeError, ValueError) as exc:
            raise WireFormatError(f"bad array header: {exc}") from None
        if not isinstance(data, bytes) or any(d < 0 for d in shape):
            raise WireFormatError("bad array: data must be bytes and dims non-negative")
        if len(data) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise WireFormatError(f"array of shape {shape} and dtype {dtype.str} needs "
                                  f"{int(np.prod(shape, dtype=np.int64)) * dtype.itemsize} bytes, got {len(data)}")
        return np.ndarray(buffer=data, dtype=dtype, shape=shape)
    if b"__npgeneric__" in obj:
        try:
            return _check_dtype(np.dtype(obj[b"dtype"])).type(obj[b"data"])
        except (KeyError, TypeError, ValueError) as exc:
            raise WireFormatError(f"bad numpy scalar: {exc}") from None
    return obj


def packb(obj) -> bytes:
    return msgpack.packb(obj, default=encode_numpy, use_bin_type=True)


def unpackb(data: bytes):
    """Decode one message; anything malformed raises WireFormatError."""
    try:
        return msgpack.unpackb(data, object_hook=decode_numpy, raw=False)
    except WireFormatError:
        raise
    except Exception as exc:  # msgpack's ExtraData, FormatError, StackError, ValueError, ...
        raise WireFormatError(f"not a msgpack message: {type(exc).__name__}: {exc}") from None
