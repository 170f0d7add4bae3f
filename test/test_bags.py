"""rosbag2 reading without ROS: bags the tests write (sqlite3 and MCAP, metadata v8 and v9) and bags written
by other projects (../shared/testdata: Foxy v4 WAL sqlite, MCAP zstd, v8 with service events, mono8 images)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vla_ros.data.bags import Bag, BagError


def write_bag(path: Path, storage: str, version: int, n: int = 5) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.LATEST)
    Image = ts.types["sensor_msgs/msg/Image"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    String = ts.types["std_msgs/msg/String"]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=version, storage_plugin=plugin) as w:
        img = w.add_connection("/camera/color/image_raw", Image.__msgtype__, typestore=ts)
        txt = w.add_connection("/vla/instruction", String.__msgtype__, typestore=ts)
        for i in range(n):
            t = 1_000_000_000 + i * 100_000_000
            data = np.full((2, 3, 3), i, np.uint8).reshape(-1)
            msg = Image(header=Header(stamp=Time(sec=1 + i // 10, nanosec=(i % 10) * 100_000_000), frame_id="cam"),
                        height=2, width=3,
                        encoding="rgb8", is_bigendian=0, step=9, data=data)
            w.write(img, t, ts.serialize_cdr(msg, Image.__msgtype__))
        w.write(txt, 1_000_000_000, ts.serialize_cdr(String(data="stack the blocks"), String.__msgtype__))
    return path


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("version", [8, 9])
def test_written_bags_read_back_through_the_live_converters(tmp_path, storage, version):
    from vla_ros.core.image import image_to_array

    bag = write_bag(tmp_path / f"b_{storage}_{version}", storage, version)
    with Bag(bag) as b:
        topics = b.topics()
        assert topics["/camera/color/image_raw"].count == 5
        imgs = [(t, m) for topic, t, m in b.messages(["/camera/color/image_raw"])]
    assert [t for t, _ in imgs] == sorted(t for t, _ in imgs)
    last = imgs[-1][1]
    rgb = image_to_array(last.encoding, last.height, last.width, last.step, bool(last.is_bigendian), last.data)
    assert rgb.shape == (2, 3, 3) and int(rgb[1, 2, 0]) == 4


def test_bag_info_json_reports_rates_and_config_topics(tmp_path):
    bag = write_bag(tmp_path / "b", "mcap", 9)
    out = subprocess.run([sys.executable, "-m", "vla_ros.cli", "bag-info", str(bag), "--json", "--config", "franka"],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    img = next(t for t in r["topics"] if t["topic"] == "/camera/color/image_raw")
    assert img["count"] == 5 and img["rate_hz"] == pytest.approx(10.0) and img["max_gap_s"] == pytest.approx(0.1)
    assert r["duration_s"] == pytest.approx(0.4)
    assert "/camera/color/image_raw" in r["config"]["present"] and "/joint_states" in r["config"]["missing"]


def test_bad_bags_give_clear_errors(tmp_path):
    with pytest.raises(BagError, match="no such bag"):
        Bag(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="metadata.yaml: missing"):
        Bag(tmp_path / "empty")
    bag = write_bag(tmp_path / "t", "mcap", 9, n=50)
    f = next(bag.glob("*.mcap"))
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(BagError, match=str(f.name).split(".")[0]):
        with Bag(bag) as b:
            list(b.messages())
    out = subprocess.run([sys.executable, "-m", "vla_ros.cli", "bag-info", str(bag)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr and str(bag) in out.stderr


def test_shared_bags_from_other_projects(shared_testdata):
    root = shared_testdata / "rosbag2"
    expected = {"rosbag2_talker_foxy_sqlite3": 20, "rosbag2_talker_mcap_zstd": 20, "ait_images_2x2_mono8_sqlite3": 3,
                "rosbag2_topics_services_mcap_v8": 2, "rosbag2_topics_services_sqlite3_v8": 2}
    for name, n in expected.items():
        before = sorted(p.name for p in (root / name).iterdir())
        with Bag(root / name) as b:
            msgs = list(b.messages())
            skipped = dict(b.skipped)
            topics = b.topics()
        assert len(msgs) == n, name
        assert sorted(p.name for p in (root / name).iterdir()) == before, f"{name}: files created beside the bag"
        if "services" in name:
            assert set(skipped) == {"/test_service1/_service_event", "/test_service2/_service_event"}
            assert all("test_msgs/srv/BasicTypes_Event" in why for why in skipped.values())
            assert any(t.count == 0 for t in topics.values())  # a topic with zero messages is listed
    with Bag(root / "ait_images_2x2_mono8_sqlite3") as b:
        from vla_ros.core.image import image_to_array

        (_, t0, m), *_ = list(b.messages())
        assert t0 == 0
        img = image_to_array(m.encoding, m.height, m.width, m.step, bool(m.is_bigendian), m.data)
        np.testing.assert_array_equal(img[..., 0], [[0, 128], [128, 255]])
    with Bag(root / "rosbag2_talker_foxy_sqlite3") as b:
        texts = [m.data for topic, _, m in b.messages(["/topic"])]
    assert texts == [f"Hello, world! {i}" for i in range(10)]


def test_custom_type_from_msg_folder(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    definition = "float64 x\nfloat64 y\nfloat64 z\nfloat64 roll\nfloat64 pitch\nfloat64 yaw\nfloat64 gripper\n" \
                 "int32 mode1\nint32 mode2\n"
    ts = get_typestore(Stores.LATEST)
    ts.register(get_types_from_msg(definition, "piper_msgs/msg/PosCmd"))
    PosCmd = ts.types["piper_msgs/msg/PosCmd"]
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        c = w.add_connection("/pos_cmd_left", "piper_msgs/msg/PosCmd", typestore=ts)
        w.write(c, 1, ts.serialize_cdr(PosCmd(x=0.25, y=0, z=0.3, roll=0, pitch=1.5, yaw=0, gripper=0.04, mode1=0,
                                              mode2=0), "piper_msgs/msg/PosCmd"))
    msg_dir = tmp_path / "defs" / "piper_msgs" / "msg"
    msg_dir.mkdir(parents=True)
    (msg_dir / "PosCmd.msg").write_text(definition)
    with Bag(tmp_path / "bag", [tmp_path / "defs"]) as b:
        (_, _, m), = list(b.messages())
    assert m.x == 0.25 and m.gripper == 0.04


def test_rclpy_padded_cdr_deserializes_and_garbage_does_not():
    """`ros2 bag record` stores rclpy's bytes as they came; rclpy pads a JointState with empty velocity and effort
    beyond the 3 bytes rosbags accepts, and such /joint_states must not be dropped when the bag is read."""
    from rclpy.serialization import serialize_message
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import JointState

    from vla_ros.data.bags import MAX_CDR_PADDING, deserialize_cdr

    store = get_typestore(Stores.LATEST)
    m = JointState()
    m.name, m.position = ["j1", "j2"], [0.1, 0.2]
    raw = serialize_message(m)
    msg = deserialize_cdr(store, raw, "sensor_msgs/msg/JointState")
    assert list(msg.name) == ["j1", "j2"] and list(msg.position) == [0.1, 0.2] and len(msg.velocity) == 0
    with pytest.raises(ValueError, match="bytes after the last field"):
        deserialize_cdr(store, raw + bytes(MAX_CDR_PADDING + 1), "sensor_msgs/msg/JointState")
