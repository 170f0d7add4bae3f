"""The policy on another machine, without ROS: the msgpack-numpy wire format against openpi's convention, the
`vla-ros serve` server (metadata, replies equal to the local policy, batching, api key, size limit, malformed
requests, several clients, a server lost and back) and the OpenVLA-OFT HTTP backend. Loopback only."""
import base64
import http.server
import json
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from websockets.sync.client import connect

from vla_ros.core.types import CameraObservation, Observation
from vla_ros.serving.msgpack_numpy import WireFormatError, packb, unpackb
from vla_ros.serving.protocol import ProtocolError, RemoteConfig, decode_chunk
from vla_ros.serving.remote import (
    OpenpiRemotePolicy,
    OpenVlaOftRemotePolicy,
    RemoteError,
    RemoteUnavailable,
)

HOST = "127.0.0.1"
JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
MODS = ("rgb", "depth", "pose")


# --- the convention, as docs/examples/openpi_client.py writes it from openpi-client's msgpack_numpy.py (msgpack and
# numpy only, not the project's module): the compatibility tests and the example check each other ----------------
def _example_client():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "openpi_client.py"
    spec = importlib.util.spec_from_file_location("openpi_client_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_EXAMPLE = _example_client()
convention_hook, convention_default = _EXAMPLE.unpack, _EXAMPLE.pack


DTYPES = ["|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8", "|b1", ">f4", ">i8"]
SHAPES = [(), (0,), (5,), (2, 3), (4, 3, 2), (1, 1, 1, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_built_message_decodes(dtype):
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        arr = (rng.uniform(0, 100, shape)).astype(dtype)
        # the byte layout by hand: a fixmap of 4 with bytes keys, raw C-order data, dtype.str, shape as array
        raw = msgpack.packb({"x": {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": np.dtype(dtype).str,
                                   b"shape": list(shape)}}, use_bin_type=True)
        got = unpackb(raw)["x"]
        assert got.dtype == np.dtype(dtype) and got.shape == shape and np.array_equal(got, arr)
        ours = packb({"x": arr})
        plain = msgpack.unpackb(ours, object_hook=convention_hook)["x"]
        assert plain.dtype == np.dtype(dtype) and tuple(plain.shape) == shape and np.array_equal(plain, arr)
        assert ours == raw  # byte for byte what openpi's packer writes for the same array


def test_numpy_scalars_strings_and_refusals():
    msg = {"a": np.float32(1.5), "b": np.int64(-3), "c": np.uint8(7), "p": "pick up", "l": [1, 2.0, "x"],
           "n": {"inner": np.arange(3, dtype=np.int16)}}
    plain = msgpack.unpackb(packb(msg), object_hook=convention_hook)
    assert plain["a"] == np.float32(1.5) and type(plain["a"]) is np.float32
    assert type(plain["b"]) is np.int64 and plain["c"] == 7 and plain["p"] == "pick up"
    assert np.array_equal(plain["n"]["inner"], np.arange(3))
    got = unpackb(msgpack.packb({"s": {b"__npgeneric__": True, b"data": 2.5, b"dtype": "<f8"}}, use_bin_type=True))
    assert type(got["s"]) is np.float64 and got["s"] == 2.5
    for bad in (np.array([object()]), np.zeros(2, complex), np.zeros(2, [("a", "<f4")])):
        with pytest.raises((WireFormatError, TypeError)):
            packb({"x": bad})
    obj_msg = msgpack.packb({b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "|O", b"shape": [1]})
    with pytest.raises(WireFormatError, match="cannot travel"):
        unpackb(obj_msg)
    short = msgpack.packb({b"__ndarray__": True, b"data": b"\0" * 7, b"dtype": "<f4", b"shape": [2]})
    with pytest.raises(WireFormatError, match="needs 8 bytes"):
        unpackb(short)
    with pytest.raises(WireFormatError, match="not a msgpack"):
        unpackb(b"\xc1garbage")


# --- server fixtures ---------------------------------------------------------------------------------------
def observation(seed=0, stamp=1.0):
    rng = np.random.default_rng(seed)
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    T = np.eye(4)
    T[:3, 3] = [0.9, 0.0, 0.6]
    cam = CameraObservation("front", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), K, stamp,
                            rng.uniform(0.3, 1.0, (48, 64)).astype(np.float32), None, T)
    return Observation(stamp, [cam], rng.uniform(-1, 1, 7).astype(np.float32), "pick up the red block",
                       proprio_names=list(JOINTS))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from vla_ros.ros.synthetic_robot import tiny_checkpoint
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config("franka")
    tmp = tmp_path_factory.mktemp("ckpt")
    return {m: tiny_checkpoint(tmp, cfg, m) for m in ("baseline", "falcon")}


def start_server(ckpt, **kw):
    from vla_ros.policies.checkpoint_io import load_policy
    from vla_ros.serving.server import PolicyServer

    policy = load_policy(ckpt)
    server = PolicyServer(policy, HOST, kw.pop("port", 0), **kw)
    server.start_in_thread()
    return server, policy


@pytest.mark.parametrize("method", ["baseline", "falcon"])
def test_remote_chunk_equals_local(checkpoints, method):
    server, policy = start_server(checkpoints[method])
    try:
        client = OpenpiRemotePolicy(f"ws://{HOST}:{server.port}", timeout_s=10.0)
        md = client.metadata
        assert md["method"] == method and md["arm_names"] == ["arm"] and md["horizon"] == policy.config.horizon
        assert isinstance(md["batching"], bool)
        for seed in range(3):
            obs = observation(seed, stamp=10.0 + seed)
            remote, local = client.infer(obs, MODS), policy.infer(obs, MODS)
            assert remote.stamp_s == obs.stamp_s and remote.modalities == local.modalities
            np.testing.assert_array_equal(remote.position_m, local.position_m)
            np.testing.assert_array_equal(remote.quat_xyzw, local.quat_xyzw)
            np.testing.assert_array_equal(remote.gripper, local.gripper)
            assert remote.reference == local.reference and remote.dt_s == local.dt_s
        assert client.diagnostics()["remote/rtt_ms_median"] > 0
        client.close()
    finally:
        server.stop()


def test_openpi_format_client_gets_actions(checkpoints):
    """What openpi's WebsocketClientPolicy does, written with websockets + msgpack: metadata first, then a dict
    of arrays and a prompt in, a dict with `actions` (T, D) out, `Authorization: Api-Key`."""
    server, policy = start_server(checkpoints["baseline"], api_key="s3cret")
    try:
        with connect(f"ws://{HOST}:{server.port}", compression=None, max_size=None,
                     additional_headers={"Authorization": "Api-Key s3cret"}) as ws:
            metadata = msgpack.unpackb(ws.recv(), object_hook=convention_hook)
            obs = observation(1)
            cam = obs.cameras[0]
            request = {"observation/cameras": ["front"], "observation/front/image": cam.rgb,
                       "observation/front/K": cam.K, "observation/state": obs.proprio,
                       "observation/state_names": JOINTS, "prompt": obs.instruction}
            ws.send(packb(request))
            reply = msgpack.unpackb(ws.recv(), object_hook=convention_hook)
        assert metadata["server"] == "vla_ros"
        acts = reply["actions"]
        assert acts.shape == (metadata["horizon"], 7) and np.all(np.isfinite(acts))
        assert "infer_ms" in reply["server_timing"]
        local = policy.infer(obs, ("rgb",))
        np.testing.assert_allclose(acts[:, :3], local.position_m[:, 0], atol=1e-12)
        np.testing.assert_allclose(acts[:, 6], local.gripper[:, 0], atol=1e-12)
    finally:
        server.stop()


def test_faults_wrong_key_oversize_malformed_two_clients(checkpoints):
    server, policy = start_server(checkpoints["baseline"], api_key="k1", max_request_bytes=200_000)
    url = f"ws://{HOST}:{server.port}"
    try:
        with pytest.raises(ConnectionError, match="unauthorized"):
            OpenpiRemotePolicy(url, api_key="wrong", timeout_s=5.0)
        with pytest.raises(ConnectionError, match="unauthorized"):
            OpenpiRemotePolicy(url, timeout_s=5.0)
        a = OpenpiRemotePolicy(url, api_key="k1", timeout_s=10.0)
        b = OpenpiRemotePolicy(url, api_key="k1", timeout_s=10.0)
        with connect(url, additional_headers={"Authorization": "Api-Key k1"}, max_size=None) as raw:
            raw.recv()
            raw.send(b"\xc1not msgpack")
            assert "malformed request" in raw.recv()
            raw.send("a text frame")
            assert "expected a binary" in raw.recv()
            raw.send(packb({"observation/cameras": ["front"]}))
            assert "observation/front/image" in raw.recv()
            bad_stamp = {"observation/cameras": ["front"], "observation/front/image": np.zeros((4, 4, 3), np.uint8),
                         "observation/front/K": np.eye(3), "observation/state": np.zeros(7, np.float32),
                         "observation/stamp_s": "yesterday"}
            raw.send(packb(bad_stamp))
            assert "malformed request" in raw.recv()
            raw.send(b"\0" * 200_001)
            reply = raw.recv()
            assert isinstance(reply, str) and "too large" in reply
            big = observation(0)
            big.cameras[0] = CameraObservation("front", np.zeros((300, 300, 3), np.uint8), big.cameras[0].K, 1.0)
            with pytest.raises(RemoteError, match="too large"):
                a.infer(big, MODS)
            # two clients at once, while the bad one keeps sending: both get their own observation's chunk
            results = {}

            def worker(name, client, seed):
                results[name] = [client.infer(observation(seed + i, 5.0 + i), MODS) for i in range(4)]

            threads = [threading.Thread(target=worker, args=(n, c, s)) for n, c, s in (("a", a, 0), ("b", b, 50))]
            for t in threads:
                t.start()
            raw.send(b"\x92garbage")
            assert "malformed" in raw.recv()
            for t in threads:
                t.join(30)
        for name, seed in (("a", 0), ("b", 50)):
            for i, chunk in enumerate(results[name]):
                local = policy.infer(observation(seed + i, 5.0 + i), MODS)
                assert chunk.stamp_s == 5.0 + i
                np.testing.assert_allclose(chunk.position_m, local.position_m, atol=1e-5)
        assert server.stats()["requests"] >= 8
        a.close()
        b.close()
    finally:
        server.stop()


def test_batched_requests_match_single(checkpoints):
    from vla_ros.policies.checkpoint_io import load_policy
    from vla_ros.serving.batching import can_batch, infer_many

    policy = load_policy(checkpoints["baseline"])
    assert can_batch(policy)
    reqs = [(observation(s, 1.0 + s), MODS) for s in range(3)]
    reqs.append((Observation(9.0, [], np.zeros(7, np.float32)), MODS))  # a bad one refused alone
    out = infer_many(policy, reqs, batching=True)
    assert isinstance(out[3], Exception) and "cameras" in str(out[3])
    for (obs, mods), chunk in zip(reqs[:3], out[:3]):
        np.testing.assert_allclose(chunk.position_m, policy.infer(obs, mods).position_m, atol=1e-5)
        assert chunk.stamp_s == obs.stamp_s


def test_server_lost_and_back(checkpoints):
    server, _ = start_server(checkpoints["baseline"])
    port = server.port
    client = OpenpiRemotePolicy(f"ws://{HOST}:{port}", timeout_s=2.0)
    client.infer(observation(0), MODS)
    server.stop()
    with pytest.raises(RemoteUnavailable):
        client.infer(observation(1, 2.0), MODS)
    diag = client.diagnostics()
    assert diag["remote/connected"] is False and diag["remote/failures"] == 1 and diag["remote/last_error"]
    with pytest.raises(RemoteUnavailable, match="next try"):  # back-off: no reconnect storm
        client.infer(observation(2, 3.0), MODS)
    server2, _ = start_server(checkpoints["baseline"], port=port)
    try:
        deadline = time.monotonic() + 10
        chunk = None
        while chunk is None and time.monotonic() < deadline:
            try:
                chunk = client.infer(observation(3, 4.0), MODS)
            except RemoteUnavailable:
                time.sleep(0.1)
        assert chunk is not None and chunk.stamp_s == 4.0
        assert client.diagnostics()["remote/reconnects"] == 1 and client.diagnostics()["remote/connected"]
    finally:
        client.close()
        server2.stop()


def test_server_down_at_start_names_url():
    import socket

    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionError, match=f"ws://{HOST}:{port}"):
        OpenpiRemotePolicy(f"ws://{HOST}:{port}", timeout_s=1.0)
    with pytest.raises(ConnectionError, match=f"http://{HOST}:{port}/act"):
        OpenVlaOftRemotePolicy(f"http://{HOST}:{port}/act", options={"horizon": 4, "dt_s": 0.1})


def test_reply_wrong_shape_or_nan_refused():
    cfg = RemoteConfig(arm_names=["arm"], proprio_dim=7, horizon=4, dt_s=0.1)
    good = np.zeros((4, 7))
    good[:, 6] = 1.0
    chunk = decode_chunk({"actions": good}, cfg, 3.0, 0.01, "m")
    assert chunk.stamp_s == 3.0 and chunk.horizon == 4
    with pytest.raises(ProtocolError, match=r"expected \(T, 7\)"):
        decode_chunk({"actions": np.zeros((4, 6))}, cfg, 3.0, 0.01, "m")
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ProtocolError, match="non-finite"):
        decode_chunk({"actions": bad}, cfg, 3.0, 0.01, "m")
    with pytest.raises(ProtocolError, match="position_m"):
        decode_chunk({"position_m": np.zeros((4, 2, 3)), "quat_xyzw": np.zeros((4, 1, 4)),
                      "gripper": np.zeros((4, 1))}, cfg, 3.0, 0.01, "m")
    with pytest.raises(ProtocolError, match="expected a map"):
        decode_chunk([1, 2], cfg, 3.0, 0.01, "m")


# --- OpenVLA-OFT: a small HTTP server following deploy.py's contract ---------------------------------------------
def _np_from_json(d):
    if "__numpy__" in d:
        arr = np.frombuffer(base64.b64decode(d["__numpy__"]), np.dtype(d["dtype"]))
        return arr.reshape(d["shape"]) if d["shape"] else arr[0]
    return d


def _np_to_json(o):
    return {"__numpy__": base64.b64encode(np.ascontiguousarray(o).tobytes()).decode(), "dtype": o.dtype.str,
            "shape": list(o.shape)}


class DeployHandler(http.server.BaseHTTPRequestHandler):
    """POST /act: {"full_image", "wrist_image"?, "state", "instruction"} -> list of (7,) actions; a bad payload
    -> the JSON string "error" (deploy.py's behaviour)."""

    seen: list = []
    mode = "ok"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])), object_hook=_np_from_json)
        DeployHandler.seen.append(body)
        if self.path != "/act" or "instruction" not in body or "full_image" not in body:
            out = "error"
        else:
            img, state = body["full_image"], body["state"]
            actions = [np.array([0.5 + 0.01 * t, 0.0, 0.3 + float(state.sum()), 0, 0, 0, float(img.mean() > 0)],
                                np.float32) for t in range(8)]
            if DeployHandler.mode == "nan":
                actions[3][1] = np.nan
            if DeployHandler.mode == "short":
                actions = [a[:5] for a in actions]
            out = actions
        data = json.dumps(out, default=_np_to_json).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openvla_oft_backend():
    httpd = http.server.ThreadingHTTPServer((HOST, 0), DeployHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://{HOST}:{httpd.server_address[1]}/act"
    try:
        with pytest.raises(ProtocolError, match="horizon"):
            OpenVlaOftRemotePolicy(url)
        client = OpenVlaOftRemotePolicy(url, options={"horizon": 8, "dt_s": 0.05}, proprio_dim=7,
                                        key_map={"front.rgb": "full_image", "state": "state",
                                                 "instruction": "instruction"})
        obs = observation(2, stamp=7.5)
        chunk = client.infer(obs, MODS)
        sent = DeployHandler.seen[-1]
        assert set(sent) == {"full_image", "state", "instruction"}
        np.testing.assert_array_equal(sent["full_image"], obs.cameras[0].rgb)
        assert sent["state"].dtype == np.float32 and sent["instruction"] == obs.instruction
        assert chunk.stamp_s == 7.5 and chunk.horizon == 8 and chunk.dt_s == 0.05
        np.testing.assert_allclose(chunk.position_m[:, 0, 0], 0.5 + 0.01 * np.arange(8), atol=1e-6)
        np.testing.assert_allclose(chunk.position_m[0, 0, 2], 0.3 + obs.proprio.sum(), atol=1e-5)
        assert np.allclose(chunk.quat_xyzw[:, 0], [0, 0, 0, 1]) and np.all(chunk.gripper == 1.0)
        for mode, match in (("nan", "non-finite"), ("short", "expected")):
            DeployHandler.mode = mode
            with pytest.raises(ProtocolError, match=match):
                client.infer(obs, MODS)
        DeployHandler.mode = "ok"
        bad = OpenVlaOftRemotePolicy(url, options={"horizon": 8, "dt_s": 0.05}, key_map={"state": "state"})
        with pytest.raises(RemoteError, match="error"):
            bad.infer(obs, MODS)
        assert client.diagnostics()["remote/refused"] == 2
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_serve_cli_warns_without_key_off_loopback_and_bench_area(tmp_path):
    """The warning comes before anything is bound (here the checkpoint is missing, so nothing ever is)."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-m", "vla_ros.cli", "serve", "--checkpoint", str(tmp_path / "none"),
                          "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 1 and "WARNING: binding 0.0.0.0 without --api-key" in res.stderr
    assert "checkpoint" in res.stderr
    from vla_ros.bench import remote

    figs = remote.run(quick=True)
    for n in (1, 2, 4):
        assert figs[f"throughput_{n}_clients"]["value"] > 0 and figs[f"throughput_{n}_clients"]["unit"] == "requests/s"
    assert set(figs["round_trip_overhead_ms"]) >= {"value", "p99", "unit"}


def test_client_side_needs_no_torch_nor_rclpy():
    """A robot PC runs the remote backend with numpy, msgpack and websockets (no torch)."""
    import subprocess
    import sys

    code = ("import sys, vla_ros.serving.remote, vla_ros.serving.protocol, vla_ros.serving.msgpack_numpy; "
            "print('torch' in sys.modules, 'rclpy' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["False", "False"], res.stderr


# --- a foreign openpi server (openpi's framing: metadata, binary requests, text frame + close on error) ----------
class ForeignServer:
    """Expects openpi's LIBERO-example keys, answers `actions` (10, 7) from the state; `mode` slow / error."""

    def __init__(self):
        from websockets.sync.server import serve

        self.mode, self.seen = "ok", []
        self.server = serve(self.handler, HOST, 0, compression=None, max_size=None)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handler(self, ws):
        ws.send(msgpack.packb({}, default=convention_default))
        for data in ws:
            obs = msgpack.unpackb(data, object_hook=convention_hook)
            self.seen.append(obs)
            if self.mode == "error":
                ws.send("Traceback (most recent call last):\n  KeyError: 'observation/wrist_image'")
                ws.close(1011, "Internal server error. Traceback included in previous frame.")
                return
            if self.mode == "slow":
                time.sleep(0.3)
            acts = np.zeros((10, 7), np.float32)
            acts[:, 0] = 0.4 + 0.01 * np.arange(10)
            acts[:, 2] = 0.2 + float(obs["observation/state"][0])
            acts[:, 6] = 1.0
            ws.send(msgpack.packb({"actions": acts, "server_timing": {"infer_ms": 1.0}}, default=convention_default))

    def stop(self):
        self.server.shutdown()


def test_foreign_openpi_server_with_key_map():
    srv = ForeignServer()
    key_map = {"front.rgb": "observation/image", "state": "observation/state", "instruction": "prompt"}
    try:
        client = OpenpiRemotePolicy(f"ws://{HOST}:{srv.port}", timeout_s=2.0, key_map=key_map, proprio_dim=7,
                                    options={"horizon": 10, "dt_s": 0.05, "image_size": 224,
                                             "action_reference": "absolute"})
        assert client.config.horizon == 10 and client.config.arm_names == ["arm"]
        obs = observation(4, stamp=2.5)
        chunk = client.infer(obs, MODS)
        sent = srv.seen[-1]
        assert set(sent) == {"observation/image", "observation/state", "prompt"} and sent["prompt"] == obs.instruction
        img = sent["observation/image"]
        assert img.shape == (224, 224, 3) and img.dtype == np.uint8
        assert not img[:28].any() and not img[-28:].any() and img[28:196].any()  # 48x64 -> 168x224, centred
        assert chunk.stamp_s == 2.5 and chunk.horizon == 10 and chunk.dt_s == 0.05
        np.testing.assert_allclose(chunk.position_m[:, 0, 0], 0.4 + 0.01 * np.arange(10), atol=1e-6)
        np.testing.assert_allclose(chunk.position_m[0, 0, 2], 0.2 + obs.proprio[0], atol=1e-6)
        srv.mode = "slow"
        client.infer(obs, MODS)
        client.infer(obs, MODS)
        assert client.diagnostics()["remote/rtt_ms_median"] >= 250  # a slow server shows in diagnostics
        srv.mode = "error"
        with pytest.raises(RemoteError, match="KeyError"):
            client.infer(obs, MODS)
        srv.mode = "ok"
        deadline, chunk = time.monotonic() + 10, None
        while chunk is None and time.monotonic() < deadline:  # openpi closes after an error: reconnect
            try:
                chunk = client.infer(obs, MODS)
            except RemoteUnavailable:
                time.sleep(0.1)
        assert chunk is not None and client.diagnostics()["remote/refused"] == 1
        client.close()
    finally:
        srv.stop()


def test_stateful_policy_reset_travels_and_batching_off(tmp_path):
    """An LSTM head keeps a history: the server must not batch it, and a client's reset() starts a new episode
    on the server (the `episode_start` flag of the next request)."""
    import torch

    from vla_ros.policies.checkpoint_io import save_checkpoint
    from vla_ros.policies.factory import make_policy, tiny_config
    from vla_ros.ros.synthetic_robot import workspace_norm_stats
    from vla_ros.runtime_config import load_runtime_config

    torch.manual_seed(0)
    pc = tiny_config("baseline", proprio_dim=7, head={"kind": "lstm", "history": 3})
    save_checkpoint(make_policy(pc, workspace_norm_stats(pc, load_runtime_config("franka"))), tmp_path / "lstm")
    from vla_ros.policies.checkpoint_io import load_policy

    server, _ = start_server(str(tmp_path / "lstm"))
    local = load_policy(str(tmp_path / "lstm"))  # its own copy, its own history
    try:
        client = OpenpiRemotePolicy(f"ws://{HOST}:{server.port}", timeout_s=10.0)
        assert client.metadata["batching"] is False
        local.reset()
        for episode in range(2):
            outs = []
            for i in range(3):
                obs = observation(10 * episode + i, 1.0 + i)
                r, loc = client.infer(obs, MODS), local.infer(obs, MODS)
                np.testing.assert_array_equal(r.position_m, loc.position_m)
                outs.append(r.position_m)
            assert not np.array_equal(outs[0], outs[1])  # the history matters
            client.reset()
            local.reset()
        client.close()
    finally:
        server.stop()


def test_example_openpi_client_script(checkpoints):
    """docs/examples/openpi_client.py (msgpack + websockets only) gets actions from the server."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "docs" / "examples" / "openpi_client.py"
    server, policy = start_server(checkpoints["baseline"], api_key="abc")
    try:
        res = subprocess.run([sys.executable, str(script), "--url", f"ws://{HOST}:{server.port}", "--api-key", "abc"],
                             capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert res.returncode == 0, res.stderr
    assert f"actions: ({policy.config.horizon}, 7) float64 finite" in res.stdout


def test_far_oversize_message_closes_only_that_connection(checkpoints):
    """Past 4x the limit (the websocket's own cap) the server closes that connection (1009); others go on."""
    import websockets

    server, _ = start_server(checkpoints["baseline"], max_request_bytes=100_000)
    try:
        other = OpenpiRemotePolicy(f"ws://{HOST}:{server.port}", timeout_s=10.0)
        with connect(f"ws://{HOST}:{server.port}", max_size=None) as raw:
            raw.recv()
            raw.send(b"\0" * 1_200_000)
            with pytest.raises(websockets.ConnectionClosed) as info:
                raw.recv(timeout=10)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        assert other.infer(observation(0), MODS).horizon == other.config.horizon
        other.close()
    finally:
        server.stop()
