"""Parity with cv_bridge where it is installed (real robots): our numpy conversions give the same arrays."""
import numpy as np
import pytest

from vla_ros.core.image import array_to_image_fields, image_to_array

cv_bridge = pytest.importorskip("cv_bridge", reason="cv_bridge is not installable from PyPI; runs on ROS machines")


@pytest.mark.parametrize("enc", ["rgb8", "bgr8", "mono8", "16UC1", "32FC1"])
def test_same_arrays_as_cv_bridge(enc):
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(0)
    if enc in ("16UC1",):
        src = rng.integers(0, 5000, (6, 8), dtype=np.uint16)
    elif enc == "32FC1":
        src = rng.uniform(0, 3, (6, 8)).astype(np.float32)
    elif enc == "mono8":
        src = rng.integers(0, 255, (6, 8), dtype=np.uint8)
    else:
        src = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    msg = cv_bridge.CvBridge().cv2_to_imgmsg(src, encoding=enc)
    theirs = cv_bridge.CvBridge().imgmsg_to_cv2(msg, desired_encoding="passthrough")
    ours = image_to_array(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data)
    if enc == "16UC1":
        np.testing.assert_allclose(ours, theirs / 1000.0, rtol=1e-6)
    elif enc == "bgr8":
        np.testing.assert_array_equal(ours, theirs[..., ::-1])
    elif enc == "mono8":
        np.testing.assert_array_equal(ours[..., 0], theirs)
    else:
        np.testing.assert_array_equal(ours, theirs)
    fields = array_to_image_fields(ours if enc != "16UC1" else theirs.astype(np.uint16), enc)
    assert bytes(fields["data"]) == bytes(Image(**fields).data)
