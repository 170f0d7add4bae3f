"""Policies on another machine, behind the policy interface (`reset`, `infer(obs, modalities) -> ActionChunk`,
`config`): `OpenpiRemotePolicy` (openpi's websocket protocol: `vla-ros serve` or an openpi server) and
`OpenVlaOftRemotePolicy` (OpenVLA-OFT's deploy.py: JSON over HTTP `POST /act`).

A server that is down when the policy is built raises ConnectionError naming the URL and the reason. A server
lost later makes `infer` raise RemoteUnavailable, and the next tries reconnect with back-off (0.5 s doubling to
8 s); `diagnostics()` reports the state, the retries and the round-trip times. A reply of the wrong shape or
with NaN is refused (ProtocolError), a text reply is the server's refusal (RemoteError).
"""
from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from collections import deque
from urllib.parse import urlparse

import numpy as np

from vla_ros.serving import json_numpy
from vla_ros.serving.msgpack_numpy import packb, unpackb
from vla_ros.serving.protocol import ProtocolError, RemoteConfig, decode_chunk, encode_observation

OPTION_KEYS = ("horizon", "dt_s", "action_reference", "rotation_ref_quat_xyzw", "image_size")
BACKOFF_S = (0.5, 8.0)


class RemoteError(RuntimeError):
    """The server refused a request (its text reply is the message)."""


class RemoteUnavailable(ConnectionError):
    """The server cannot be reached now; the policy retries with back-off."""


def foreign_config(options: dict, arm_names: list[str], proprio_dim: int, metadata: dict | None = None
                   ) -> RemoteConfig:
    """The layout of a foreign server's actions: `load_options` (horizon, dt_s, action_reference,
    rotation_ref_quat_xyzw), else the same keys in its metadata; arms and proprio are the robot's. (`image_size`,
    also an option, is the square size images are resized-with-pad to before sending; 0 = as they are.)"""
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise ProtocolError(f"policy.load_options: {unknown} unknown for a remote backend; use {list(OPTION_KEYS)}")
    got = {k: options.get(k, (metadata or {}).get(k)) for k in OPTION_KEYS}
    missing = [k for k in ("horizon", "dt_s") if got[k] is None]
    if missing:
        raise ProtocolError(f"policy.load_options: a foreign server needs {missing} (its chunk length and step)")
    return RemoteConfig(arm_names=list(arm_names), proprio_dim=int(proprio_dim), horizon=int(got["horizon"]),
                        dt_s=float(got["dt_s"]), action_reference=got["action_reference"] or "absolute",
                        rotation_ref_quat_xyzw=list(got["rotation_ref_quat_xyzw"] or [0.0, 0.0, 0.0, 1.0]),
                        name="remote")


class _Health:
    """Connection state, retries with back-off, round-trip times (what the policy node puts on /diagnostics)."""

    def __init__(self, url: str):
        self.url, self.connected, self.last_error = url, False, ""
        self.reconnects, self.failures, self.refused = 0, 0, 0
        self.backoff_s, self.next_try = BACKOFF_S[0], 0.0
        self.rtt_s: deque[float] = deque(maxlen=200)
        self.server_ms: deque[float] = deque(maxlen=200)

    def lost(self, reason: str) -> None:
        self.connected, self.last_error = False, reason
        self.failures += 1
        self.next_try = time.monotonic() + self.backoff_s
        self.backoff_s = min(2 * self.backoff_s, BACKOFF_S[1])

    def ok(self) -> None:
        self.connected, self.backoff_s = True, BACKOFF_S[0]

    def values(self) -> dict:
        med = (lambda d: 1e3 * float(np.median(d)) if d else float("nan"))
        return {"remote/url": self.url, "remote/connected": self.connected, "remote/failures": self.failures,
                "remote/reconnects": self.reconnects, "remote/refused": self.refused,
                "remote/last_error": self.last_error, "remote/rtt_ms_median": med(self.rtt_s),
                "remote/rtt_ms_p99": 1e3 * float(np.percentile(self.rtt_s, 99)) if self.rtt_s else float("nan"),
                "remote/server_ms_median": float(np.median(self.server_ms)) if self.server_ms else float("nan")}


class OpenpiRemotePolicy:
    """Args:
    url: ws://host:port of the server. api_key: sent as `Authorization: Api-Key <key>` ("" = none).
    timeout_s: connect and reply timeout. key_map: field -> key for a foreign server ({} = native keys).
    options: for a foreign server, the action layout (see foreign_config).
    arm_names, proprio_dim: the robot's (used when the server's metadata does not name its own).
    """

    method = "remote_openpi"
    device = "remote"

    def __init__(self, url: str, api_key: str = "", timeout_s: float = 5.0, key_map: dict | None = None,
                 options: dict | None = None, arm_names: list[str] = ("arm",), proprio_dim: int = 0):
        self.url, self.api_key, self.timeout_s, self.key_map = url, api_key, float(timeout_s), dict(key_map or {})
        self.health = _Health(url)
        self._ws = None
        self._episode_start = True
        self.metadata = self._connect()
        md = self.metadata
        if md.get("server") == "vla_ros":
            self.config = RemoteConfig(arm_names=list(md["arm_names"]), proprio_dim=int(md["proprio_dim"]),
                                       horizon=int(md["horizon"]), dt_s=float(md["dt_s"]),
                                       proprio_names=list(md["proprio_names"]),
                                       camera_names=list(md["camera_names"]),
                                       action_reference=md["action_reference"],
                                       rotation_ref_quat_xyzw=list(md["rotation_ref_quat_xyzw"]),
                                       name=md["policy_name"])
            self.inputs = tuple(md.get("inputs", ()))
            if options:
                raise ProtocolError(f"policy.load_options {sorted(options)}: a vla_ros server describes its policy")
        else:
            self.config = foreign_config(dict(options or {}), list(arm_names), proprio_dim, md)
            self.inputs = ()
        self.image_size = int((options or {}).get("image_size", 0)) if self.key_map else 0

    def _connect(self) -> dict:
        from websockets.sync.client import connect

        headers = {"Authorization": f"Api-Key {self.api_key}"} if self.api_key else None
        try:
            ws = connect(self.url, compression=None, max_size=None, additional_headers=headers,
                         open_timeout=self.timeout_s, close_timeout=1.0, legacy=True)
        except Exception as exc:
            raise ConnectionError(f"policy server {self.url}: {type(exc).__name__}: {exc}") from None
        try:
            first = ws.recv(timeout=self.timeout_s)
        except Exception as exc:
            ws.close()
            raise ConnectionError(f"policy server {self.url}: no metadata ({type(exc).__name__}: {exc})") from None
        if isinstance(first, str):
            ws.close()
            raise ConnectionError(f"policy server {self.url} refused the connection: {first}")
        self._ws = ws
        self.health.ok()
        return unpackb(first)

    def _drop(self, reason: str) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
        self._ws = None
        self.health.lost(reason)

    def reset(self) -> None:
        self._episode_start = True

    def infer(self, obs, modalities: tuple[str, ...] | None = None):
        if self._ws is None:
            wait = self.health.next_try - time.monotonic()
            if wait > 0:
                raise RemoteUnavailable(f"{self.url} lost ({self.health.last_error}); next try in {wait:.1f} s")
            try:
                self._connect()
                self.health.reconnects += 1
            except ConnectionError as exc:
                self.health.lost(str(exc))
                raise RemoteUnavailable(str(exc)) from None
        mods = tuple(modalities or ())
        if self.inputs:  # send depth / poses only when the server's method reads them
            mods = tuple(m for m in mods if m in self.inputs)
        msg = encode_observation(obs, mods, self.key_map, episode_start=self._episode_start and not self.key_map,
                                 image_size=self.image_size)
        t0 = time.perf_counter()
        try:
            self._ws.send(packb(msg))
            reply = self._ws.recv(timeout=self.timeout_s)
        except TimeoutError:
            self._drop(f"no reply within {self.timeout_s} s")
            raise RemoteUnavailable(f"{self.url}: no reply within {self.timeout_s} s") from None
        except Exception as exc:
            self._drop(f"{type(exc).__name__}: {exc}")
            raise RemoteUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from None
        rtt = time.perf_counter() - t0
        self.health.rtt_s.append(rtt)
        if isinstance(reply, str):
            self.health.refused += 1
            raise RemoteError(f"server refused the request: {reply.strip()}")
        self._episode_start = False
        data = unpackb(reply)
        timing = data.get("server_timing", {}) if isinstance(data, dict) else {}
        if isinstance(timing, dict) and "infer_ms" in timing:
            self.health.server_ms.append(float(timing["infer_ms"]))
        try:
            return decode_chunk(data, self.config, obs.stamp_s, rtt, self.method)
        except ProtocolError:
            self.health.refused += 1
            raise

    def diagnostics(self) -> dict:
        return {"remote/backend": "openpi", **self.health.values()}

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None


class OpenVlaOftRemotePolicy:
    """OpenVLA-OFT's deploy.py: `POST <url>` (…/act) a JSON object of json_numpy arrays and the `instruction`;
    the reply is the chunk as a list of per-step action arrays.

    Args: as OpenpiRemotePolicy; `key_map` defaults to {"<first camera>.rgb": "full_image", "state": "state",
    "instruction": "instruction"} (deploy.py's keys; add e.g. "wrist.rgb": "wrist_image" for more cameras).
    """

    method = "remote_openvla_oft"
    device = "remote"

    def __init__(self, url: str, api_key: str = "", timeout_s: float = 5.0, key_map: dict | None = None,
                 options: dict | None = None, arm_names: list[str] = ("arm",), proprio_dim: int = 0,
                 camera_names: list[str] = ("front",)):
        self.url, self.api_key, self.timeout_s = url, api_key, float(timeout_s)
        self.key_map = dict(key_map or {f"{camera_names[0]}.rgb": "full_image", "state": "state",
                                        "instruction": "instruction"})
        self.health = _Health(url)
        self.config = foreign_config(dict(options or {}), list(arm_names), proprio_dim)
        self.image_size = int((options or {}).get("image_size", 0))
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConnectionError(f"policy server {url}: expected http://host:port/act")
        try:  # deploy.py has no health route: check that something listens
            socket.create_connection((parsed.hostname, parsed.port or 80), timeout=self.timeout_s).close()
        except OSError as exc:
            raise ConnectionError(f"policy server {url}: {type(exc).__name__}: {exc}") from None
        self.health.ok()

    def reset(self) -> None:
        """deploy.py keeps no per-episode state."""

    def infer(self, obs, modalities: tuple[str, ...] | None = None):
        if not self.health.connected and time.monotonic() < self.health.next_try:
            raise RemoteUnavailable(f"{self.url} lost ({self.health.last_error})")
        request = encode_observation(obs, tuple(modalities or ()), self.key_map, image_size=self.image_size)
        body = json_numpy.dumps(request).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Api-Key {self.api_key}"
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, body, headers, method="POST"),
                                        timeout=self.timeout_s) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            self.health.refused += 1
            raise RemoteError(f"server refused the request: HTTP {exc.code} {exc.reason}") from None
        except (OSError, TimeoutError) as exc:
            self.health.lost(f"{type(exc).__name__}: {exc}")
            raise RemoteUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from None
        rtt = time.perf_counter() - t0
        if not self.health.connected:
            self.health.reconnects += 1
        self.health.ok()
        self.health.rtt_s.append(rtt)
        try:
            reply = json_numpy.loads(text)
            if isinstance(reply, str) and reply != "error":  # deploy.py's double-encoded form
                reply = json_numpy.loads(reply)
        except ValueError as exc:
            self.health.refused += 1
            raise ProtocolError(f"reply is not JSON: {exc}") from None
        if isinstance(reply, str):
            self.health.refused += 1
            raise RemoteError(f"server refused the request: {reply!r} (deploy.py's answer to a bad request)")
        try:
            steps = [np.asarray(a, np.float64) for a in reply] if isinstance(reply, list) else reply
            actions = np.stack(steps) if isinstance(steps, list) and steps else steps
            return decode_chunk({"actions": actions}, self.config, obs.stamp_s, rtt, self.method)
        except (ProtocolError, ValueError, TypeError) as exc:
            self.health.refused += 1
            raise ProtocolError(f"reply refused: {exc}") from None

    def diagnostics(self) -> dict:
        return {"remote/backend": "openvla_oft", **self.health.values()}

    def close(self) -> None:
        """Nothing held between requests."""


def make_remote_policy(policy_cfg, arm_names: list[str], joint_names: list[str], camera_names: list[str]):
    """The backend a PolicyNodeConfig names (`backend` openpi | openvla_oft), connected. The key is the YAML's
    `api_key`, else $VLA_ROS_API_KEY (which keeps it out of files and ROS parameters)."""
    common = dict(url=policy_cfg.url, api_key=policy_cfg.api_key or os.environ.get("VLA_ROS_API_KEY", ""),
                  timeout_s=policy_cfg.timeout_s,
                  key_map=policy_cfg.key_map, options=policy_cfg.load_options, arm_names=list(arm_names),
                  proprio_dim=len(joint_names))
    if policy_cfg.backend == "openpi":
        return OpenpiRemotePolicy(**common)
    if policy_cfg.backend == "openvla_oft":
        return OpenVlaOftRemotePolicy(**common, camera_names=list(camera_names))
    raise ValueError(f"policy.backend: {policy_cfg.backend!r} is not a remote backend")
