"""Query `vla-ros serve` the way an openpi client does: websockets + msgpack with openpi's numpy convention.

    python docs/examples/openpi_client.py --url ws://127.0.0.1:8000 [--api-key KEY]

With openpi-client installed, `WebsocketClientPolicy(host="ws://127.0.0.1:8000").infer(request)` sends the same
bytes. Prints the server's metadata and the shape of the `actions` it returns for a synthetic observation.
"""
import argparse

import msgpack
import numpy as np
from websockets.sync.client import connect


def pack(obj):
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def unpack(obj):
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args()
    headers = {"Authorization": f"Api-Key {args.api_key}"} if args.api_key else None
    with connect(args.url, compression=None, max_size=None, additional_headers=headers) as ws:
        first = ws.recv()
        if isinstance(first, str):
            raise SystemExit(f"server refused: {first}")
        metadata = msgpack.unpackb(first, object_hook=unpack)
        print("metadata:", {k: metadata[k] for k in ("method", "arm_names", "camera_names", "horizon", "dt_s",
                                                     "batching") if k in metadata})
        h, w = 480, 640
        request = {"observation/cameras": list(metadata["camera_names"]), "prompt": "pick up the red block",
                   "observation/state": np.zeros(metadata["proprio_dim"], np.float32),
                   "observation/state_names": list(metadata["proprio_names"])}
        for cam in metadata["camera_names"]:
            request[f"observation/{cam}/image"] = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
            request[f"observation/{cam}/K"] = np.array([[500.0, 0, w / 2], [0, 500.0, h / 2], [0, 0, 1]])
        ws.send(msgpack.packb(request, default=pack))
        reply = ws.recv()
        if isinstance(reply, str):
            raise SystemExit(f"server error: {reply}")
        actions = msgpack.unpackb(reply, object_hook=unpack)["actions"]
        print("actions:", actions.shape, actions.dtype, "finite" if np.all(np.isfinite(actions)) else "NOT finite")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
