"""Finding 1 (camera frames across processes) and finding 5 (logs per cause, implausible intrinsics).

A 640x480 rgb8 frame is 900 KiB and Fast DDS's default shared-memory segment 512 KiB: with the defaults, a
subscriber in another process received 8 of 240 frames. The package's profile (vla_ros/dds.py) fixes it; the
frontend counts frames against the publisher's sequence numbers and names the cause when they go missing."""
import pytest

from vla_ros.core.camera import CameraInfoError, intrinsics_from_fields
from vla_ros.core.delivery import DeliveryMonitor
from vla_ros.core.log_causes import CauseThrottle, cause_of
from vla_ros.dds import PROFILE, apply_dds_defaults


@pytest.mark.ros
@pytest.mark.parametrize("size", [(480, 640), (720, 1280)])
def test_full_size_rgbd_frames_arrive_from_another_process(ros_context, size):
    from vla_ros.ros.delivery_probe import cross_process

    report = cross_process(*size, seconds=4.0, profile=True, context=ros_context)
    for stream in ("rgb", "depth"):
        r = report[stream]
        assert r["published"] >= 30, r  # frames the publisher sent while we listened (its rate varies with load)
        assert r["size_bytes"] >= size[0] * size[1] * 2
        assert r["fraction"] >= 0.95, f"{stream}: {r['received']} of {r['published']} frames arrived"


def test_profile_is_the_default_and_a_users_profile_is_kept():
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    assert apply_dds_defaults(env) == str(PROFILE) and env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(PROFILE)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    mine = {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/my.xml"}
    assert apply_dds_defaults(mine) == "/etc/my.xml" and mine["FASTDDS_DEFAULT_PROFILES_FILE"] == "/etc/my.xml"
    off = {"VLA_ROS_DDS_PROFILE": "0"}
    assert apply_dds_defaults(off) == "" and "FASTDDS_DEFAULT_PROFILES_FILE" not in off
    assert apply_dds_defaults({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == ""
    xml = PROFILE.read_text()
    assert "<segment_size>67108864</segment_size>" in xml and '<interface name="127.0.0.1"/>' in xml


def test_delivery_monitor_names_the_cause_of_missing_frames():
    m = DeliveryMonitor(min_published=30, min_fraction=0.9)
    gid = b"\x01" * 16
    for seq in range(1, 241, 30):  # 8 of 240 arrive, as in the finding
        m.add("rgb/front", gid, seq, 921600)
    for seq in range(1, 241):  # a small topic that gets everything
        m.add("depth/front", b"\x02" * 16, seq, 1000)
    (line,) = m.warnings()
    assert line.startswith("rgb/front: 8 of 211 published messages arrived (4%)")
    assert "900 KiB" in line and "FASTDDS_DEFAULT_PROFILES_FILE" in line
    assert m.report()["depth/front"]["fraction"] == 1.0


def test_logs_are_throttled_per_cause_not_per_call_site():
    log = CauseThrottle(period_s=5.0)
    causes = ["encoding: 'yuv422' is not supported", "data: expected 921600 bytes, got 12",
              "encoding: '16UC1' is not a colour encoding", "step: 100 < width * channels = 1920",
              "height/width: 0x0 image", "is_bigendian: 7 is not 0 or 1", "data: non-finite depth"]
    assert all(log.line(f"rejected rgb/front: {c}", 1.0) for c in causes), "each cause gets its first line"
    assert log.line("rejected rgb/front: data: expected 921600 bytes, got 15", 2.0) is None  # same cause, held
    again = log.line("rejected rgb/front: data: expected 921600 bytes, got 16", 7.0)
    assert again.endswith("(and 1 more like it in the last 6 s)")
    assert cause_of("got 12 at 3.5 s") == cause_of("got 99 at 0.25 s")


@pytest.mark.parametrize("k,what", [
    ([1e-9, 0, 320, 0, 1e-9, 240, 0, 0, 1], "implausible fx"),
    ([1e12, 0, 320, 0, 1e12, 240, 0, 0, 1], "implausible fx"),
    ([600, 0, 1e300, 0, 600, 240, 0, 0, 1], "implausible cx"),
    ([600, 0, 320, 0, 600, -500, 0, 0, 1], "implausible cy"),
])
def test_implausible_intrinsics_are_refused_with_the_reason(k, what):
    with pytest.raises(CameraInfoError, match=what):
        intrinsics_from_fields(k, [], 640, 480)


def test_plausible_intrinsics_pass():
    for f in (200.0, 615.0, 3000.0):  # wide, RealSense-like, telephoto
        assert intrinsics_from_fields([f, 0, 319.5, 0, f, 239.5, 0, 0, 1], [], 640, 480).K[0, 0] == f


@pytest.mark.ros
def test_doctor_reports_delivery_from_a_camera_process_and_a_silent_topic():
    import subprocess
    import sys

    from vla_ros.ros.delivery_probe import start_synthetic_camera

    cam = start_synthetic_camera(480, 640, seconds=8.0)
    try:
        proc = subprocess.run([sys.executable, "-m", "vla_ros.cli", "doctor", "--robot", "franka", "--seconds", "4"],
                              capture_output=True, text=True, timeout=60, check=False)
    finally:
        cam.terminate()
        cam.wait(timeout=10)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fastdds_profile.xml" in proc.stdout
    assert "/camera/color/image_raw: " in proc.stdout and "KiB each" in proc.stdout and "PROBLEM" not in proc.stdout
    silent = subprocess.run([sys.executable, "-m", "vla_ros.cli", "doctor", "--robot", "franka", "--seconds", "1"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert silent.returncode == 1 and "nothing received" in silent.stdout
