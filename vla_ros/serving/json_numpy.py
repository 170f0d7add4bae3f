"""JSON with numpy arrays in the `json_numpy` package's convention, which OpenVLA-OFT's deploy.py speaks:
an array or numpy scalar is {"__numpy__": base64 of its C-order bytes, "dtype": its descr (e.g. "<f4"),
"shape": [dims]} (a scalar has shape []). Object and structured dtypes are refused."""
from __future__ import annotations

import base64
import json

import numpy as np


def _default(obj):
    if isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.kind in ("O", "V"):
            raise TypeError(f"dtype {obj.dtype} cannot travel as JSON")
        arr = np.ascontiguousarray(obj)
        return {"__numpy__": base64.b64encode(arr.tobytes()).decode("ascii"), "dtype": arr.dtype.str,
                "shape": list(np.shape(obj))}
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _hook(dct: dict):
    if "__numpy__" not in dct:
        return dct
    dtype = np.dtype(dct["dtype"])
    if dtype.kind in ("O", "V"):
        raise ValueError(f"dtype {dtype} refused")
    arr = np.frombuffer(base64.b64decode(dct["__numpy__"]), dtype)
    shape = dct["shape"]
    return arr.reshape(shape) if shape else arr[0]


def dumps(obj) -> str:
    return json.dumps(obj, default=_default)


def loads(text: str | bytes):
    return json.loads(text, object_hook=_hook)
