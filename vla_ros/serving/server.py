"""`vla-ros serve`: one policy in memory, served over openpi's websocket protocol to any number of clients.

Per connection: the server sends its metadata (one binary msgpack message), then answers each binary request
(an observation, see protocol.py) with one binary reply (the chunk, `actions` first). A problem with a request
(too large, not msgpack, a bad key, a policy input error) is answered with a text frame naming it, and the
connection stays open; a wrong or missing `Authorization: Api-Key <key>` gets a text frame and a close (1008).
Requests that arrive while the model is busy are inferred together (batching.py). Norm stats live with the
policy, so clients send raw observations and get actions in robot units.
"""
from __future__ import annotations

import asyncio
import hmac
import http
import logging
import queue
import threading
import time
from collections import deque

import numpy as np
import websockets
from websockets.asyncio.server import ServerConnection, serve

from vla_ros.serving.batching import can_batch, infer_many
from vla_ros.serving.msgpack_numpy import WireFormatError, packb, unpackb
from vla_ros.serving.protocol import ProtocolError, decode_observation, encode_chunk

log = logging.getLogger("vla_ros.serve")
PROTOCOL_VERSION = 1


def policy_metadata(policy, batching: bool, max_batch: int, max_request_bytes: int) -> dict:
    """What a client needs before the first request (sent on connect)."""
    pc = policy.config
    return {"server": "vla_ros", "protocol_version": PROTOCOL_VERSION, "method": policy.method,
            "policy_name": pc.name, "arm_names": list(pc.arm_names), "camera_names": list(pc.camera_names),
            "proprio_dim": int(pc.proprio_dim), "proprio_names": list(pc.proprio_names),
            "image_size": int(pc.image_size), "horizon": int(pc.horizon), "action_horizon": int(pc.horizon),
            "dt_s": float(pc.dt_s), "action_reference": pc.action_reference,
            "rotation_ref_quat_xyzw": [float(v) for v in pc.rotation_ref_quat_xyzw], "modalities": pc.modalities,
            "inputs": list(policy.INPUTS), "batching": bool(batching), "max_batch": int(max_batch),
            "max_request_bytes": int(max_request_bytes),
            "action_layout": "actions (T, 7*arms): per arm x y z m, rotation vector rad relative to "
                             "rotation_ref_quat_xyzw, gripper 0 closed..1 open"}


def _health_check(connection: ServerConnection, request):
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


class PolicyServer:
    """Args:
    policy: a loaded vla_ros policy (load_policy).
    host, port: where to listen (port 0 = any free port; see `port` once started).
    api_key: required `Authorization: Api-Key <key>` ("" = none).
    max_request_bytes: larger requests are refused with a text error.
    max_batch: at most this many requests per forward pass; batching: stack requests that arrive together
        (only where the policy is stateless, see batching.can_batch).
    """

    def __init__(self, policy, host: str = "127.0.0.1", port: int = 8000, api_key: str = "",
                 max_request_bytes: int = 32 << 20, max_batch: int = 8, batching: bool = True):
        self.policy, self.host, self.port, self.api_key = policy, host, port, api_key
        self.max_request_bytes = int(max_request_bytes)
        self.max_batch = max(1, int(max_batch))
        self.batching = bool(batching) and self.max_batch > 1 and can_batch(policy)
        self.metadata = policy_metadata(policy, self.batching, self.max_batch, self.max_request_bytes)
        self.rotation_ref = list(policy.config.rotation_ref_quat_xyzw)
        self._requests: queue.Queue = queue.Queue()
        self.batch_sizes: deque[int] = deque(maxlen=1000)
        self.errors: deque[str] = deque(maxlen=100)
        self._ready = threading.Event()
        self._stopping = None
        self._loop = None
        self._worker = threading.Thread(target=self._infer_loop, name="vla_serve_infer", daemon=True)

    # --- inference worker (one model, one thread) ----------------------------------------------------
    def _infer_loop(self) -> None:
        while True:
            first = self._requests.get()
            if first is None:
                return
            items = [first]
            while len(items) < self.max_batch:
                try:
                    nxt = self._requests.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._requests.put(None)
                    break
                items.append(nxt)
            t0 = time.perf_counter()
            try:
                for item in items:
                    if item[2]:  # episode_start
                        self.policy.reset()
                results = infer_many(self.policy, [(it[0], it[1]) for it in items], self.batching)
            except Exception as exc:  # the worker must outlive any batch: its clients get the error, others go on
                log.exception("inference batch failed")
                results = [exc] * len(items)
            infer_ms = 1e3 * (time.perf_counter() - t0)
            self.batch_sizes.append(len(items))
            for (_, _, _, fut, loop), res in zip(items, results):
                loop.call_soon_threadsafe(_resolve, fut, res, infer_ms, len(items))

    # --- connections ---------------------------------------------------------------------------------
    def _authorised(self, ws: ServerConnection) -> bool:
        if not self.api_key:
            return True
        given = ws.request.headers.get("Authorization", "") if ws.request is not None else ""
        return hmac.compare_digest(given.encode(), f"Api-Key {self.api_key}".encode())

    async def _refuse(self, ws: ServerConnection, reason: str) -> None:
        self.errors.append(reason)
        log.warning("refused a request from %s: %s", ws.remote_address, reason)
        try:
            await ws.send(reason)
        except websockets.ConnectionClosed:
            pass

    async def _handler(self, ws: ServerConnection) -> None:
        if not self._authorised(ws):
            self.errors.append("unauthorized")
            await ws.send("unauthorized: send the header `Authorization: Api-Key <key>` with this server's key")
            await ws.close(1008, "unauthorized")
            return
        await ws.send(packb(self.metadata))
        loop = asyncio.get_running_loop()
        prev_total_ms = None
        while True:
            try:
                data = await ws.recv()
            except websockets.ConnectionClosed:
                return
            t0 = time.monotonic()
            if isinstance(data, str):
                await self._refuse(ws, "malformed request: expected a binary msgpack message, got a text frame")
                continue
            if len(data) > self.max_request_bytes:
                await self._refuse(ws, f"request too large: {len(data)} bytes > limit {self.max_request_bytes}")
                continue
            try:
                obs, mods, episode_start = decode_observation(unpackb(data))
            except (WireFormatError, ProtocolError) as exc:
                await self._refuse(ws, f"malformed request: {exc}")
                continue
            except Exception as exc:  # e.g. a string where a stamp belongs: still the sender's problem alone
                await self._refuse(ws, f"malformed request: {type(exc).__name__}: {exc}")
                continue
            fut = loop.create_future()
            self._requests.put((obs, mods, episode_start, fut, loop))
            result, infer_ms, batch_size = await fut
            if isinstance(result, Exception):
                await self._refuse(ws, f"inference failed: {type(result).__name__}: {result}")
                continue
            reply = encode_chunk(result, self.rotation_ref)
            reply["server_timing"] = {"infer_ms": infer_ms, "batch_size": batch_size}
            if prev_total_ms is not None:
                reply["server_timing"]["prev_total_ms"] = prev_total_ms
            try:
                await ws.send(packb(reply))
            except websockets.ConnectionClosed:
                return
            prev_total_ms = 1e3 * (time.monotonic() - t0)

    # --- running -------------------------------------------------------------------------------------
    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if not self._worker.is_alive():
            self._worker.start()
        hard_cap = max(4 * self.max_request_bytes, self.max_request_bytes + (1 << 20))
        async with serve(self._handler, self.host, self.port, compression=None, max_size=hard_cap,
                         process_request=_health_check) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopping.wait()
        self._requests.put(None)

    def serve_forever(self) -> None:
        asyncio.run(self.run())

    def start_in_thread(self, timeout_s: float = 10.0) -> int:
        """Serve from a background thread (bench, tests); returns the port."""
        self._thread = threading.Thread(target=self.serve_forever, name="vla_serve", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"server did not start on {self.host}:{self.port} within {timeout_s} s")
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=10.0)

    def stats(self) -> dict:
        sizes = list(self.batch_sizes)
        return {"requests": int(np.sum(sizes)) if sizes else 0, "batches": len(sizes),
                "mean_batch": float(np.mean(sizes)) if sizes else 0.0, "errors": len(self.errors)}


def _resolve(fut: asyncio.Future, result, infer_ms: float, batch_size: int) -> None:
    if not fut.done():  # the client may have gone
        fut.set_result((result, infer_ms, batch_size))
