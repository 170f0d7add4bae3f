"""Image conversions: known answers for every encoding, padded step, big-endian, compressed, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.core.image import (
    ImageFormatError,
    array_to_image_fields,
    compressed_to_array,
    encode_compressed_depth,
    image_to_array,
)

RGB = np.array([[[10, 20, 30], [40, 50, 60]], [[70, 80, 90], [100, 110, 120]]], np.uint8)  # 2x2


def fields(data, encoding, h, w, step, big=False):
    return dict(encoding=encoding, height=h, width=w, step=step, is_bigendian=big, data=data)


def pad_rows(rows: np.ndarray, pad: int) -> bytes:
    b = rows.reshape(rows.shape[0], -1).view(np.uint8)
    return np.concatenate([b, np.full((b.shape[0], pad), 0xEE, np.uint8)], 1).tobytes()


@pytest.mark.parametrize("pad", [0, 3])
def test_rgb8_bgr8_rgba8_bgra8_known_answers(pad):
    bgr = RGB[..., ::-1]
    rgba = np.concatenate([RGB, np.full((2, 2, 1), 255, np.uint8)], -1)
    bgra = np.concatenate([bgr, np.full((2, 2, 1), 7, np.uint8)], -1)
    for enc, src, ch in (("rgb8", RGB, 3), ("bgr8", bgr, 3), ("rgba8", rgba, 4), ("bgra8", bgra, 4)):
        out = image_to_array(**fields(pad_rows(np.ascontiguousarray(src), pad), enc, 2, 2, 2 * ch + pad))
        np.testing.assert_array_equal(out, RGB, err_msg=enc)


def test_rgb8_is_a_zero_copy_view():
    data = bytearray(RGB.tobytes())
    out = image_to_array(**fields(data, "rgb8", 2, 2, 6))
    data[0] = 99
    assert out[0, 0, 0] == 99


def test_mono8_and_mono16():
    mono = np.array([[0, 128], [255, 7]], np.uint8)
    out = image_to_array(**fields(pad_rows(mono, 2), "mono8", 2, 2, 4))
    np.testing.assert_array_equal(out[..., 0], mono)
    np.testing.assert_array_equal(out[..., 2], mono)
    m16 = np.array([[0, 256], [65535, 512]], np.uint16)
    out = image_to_array(**fields(m16.astype(">u2").tobytes(), "mono16", 2, 2, 4, big=True))
    np.testing.assert_array_equal(out[..., 0], [[0, 1], [255, 2]])


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("pad", [0, 2])
def test_16uc1_millimetres_to_metres(big, pad):
    mm = np.array([[0, 1000], [1234, 65535]], np.uint16)
    raw = mm.astype(">u2" if big else "<u2")
    out = image_to_array(**fields(pad_rows(raw, pad), "16UC1", 2, 2, 4 + pad, big=big))
    np.testing.assert_allclose(out, [[0.0, 1.0], [1.234, 65.535]], rtol=1e-6)
    assert out.dtype == np.float32


@pytest.mark.parametrize("big", [False, True])
def test_32fc1_metres(big):
    m = np.array([[0.5, np.nan], [2.25, 0.0]], np.float32)
    out = image_to_array(**fields(m.astype(">f4" if big else "<f4").tobytes(), "32FC1", 2, 2, 8, big=big))
    np.testing.assert_array_equal(out, m)


def test_bad_input_names_the_field():
    with pytest.raises(ImageFormatError, match="encoding"):
        image_to_array(**fields(b"\0" * 12, "yuv422", 2, 2, 6))
    with pytest.raises(ImageFormatError, match="step"):
        image_to_array(**fields(b"\0" * 10, "rgb8", 2, 2, 5))
    with pytest.raises(ImageFormatError, match="data: length"):
        image_to_array(**fields(b"\0" * 11, "rgb8", 2, 2, 6))
    with pytest.raises(ImageFormatError, match="format"):
        compressed_to_array("webp", b"abc")
    with pytest.raises(ImageFormatError, match="data"):
        compressed_to_array("jpeg", b"not a jpeg")


def test_jpeg_png_and_compressed_depth():
    import cv2

    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :, 0] = 200  # red in RGB
    ok, png = cv2.imencode(".png", img[..., ::-1])
    np.testing.assert_array_equal(compressed_to_array("rgb8; png compressed bgr8", png.tobytes()), img)
    ok, jpg = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert np.abs(compressed_to_array("jpeg", jpg.tobytes()).astype(int) - img).max() <= 3
    depth = np.array([[0.0, 0.5], [1.25, 3.0]], np.float32)
    fmt, data = encode_compressed_depth(depth, "16UC1")
    np.testing.assert_allclose(compressed_to_array(fmt, data), depth, atol=1e-3)
    fmt, data = encode_compressed_depth(depth, "32FC1")
    out = compressed_to_array(fmt, data)
    assert out[0, 0] == 0.0  # invalid stays invalid
    np.testing.assert_allclose(out[depth > 0], depth[depth > 0], rtol=0.02)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), enc=st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8"]),
       seed=st.integers(0, 2**16))
def test_colour_round_trip(h, w, enc, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    f = array_to_image_fields(img, enc)
    np.testing.assert_array_equal(image_to_array(**{k: f[k] for k in fields(0, 0, 0, 0, 0)}), img)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), enc=st.sampled_from(["16UC1", "32FC1"]), seed=st.integers(0, 2**16))
def test_depth_round_trip(h, w, enc, seed):
    depth = np.round(np.random.default_rng(seed).uniform(0, 10, (h, w)), 3).astype(np.float32)
    f = array_to_image_fields(depth, enc)
    np.testing.assert_allclose(image_to_array(**{k: f[k] for k in fields(0, 0, 0, 0, 0)}), depth, atol=6e-4)


@pytest.mark.parametrize("enc", ["16UC1", "32FC1"])
def test_depth_and_validity_fast_path_matches_clean_depth(enc):
    from vla_ros.core.depth import clean_depth
    from vla_ros.core.image import depth_and_validity

    d = np.array([[0.0, 0.5], [1.25, 3.0]], np.float32)
    if enc == "32FC1":
        d[0, 1] = np.nan
    f = array_to_image_fields(d, enc)
    depth, valid = depth_and_validity(**{k: f[k] for k in fields(0, 0, 0, 0, 0)})
    ref_d, ref_v = clean_depth(image_to_array(**{k: f[k] for k in fields(0, 0, 0, 0, 0)}))
    np.testing.assert_array_equal(valid, ref_v)
    np.testing.assert_allclose(depth, ref_d)
    with pytest.raises(ImageFormatError, match="encoding"):
        g = array_to_image_fields(np.zeros((2, 2, 3), np.uint8), "rgb8")
        depth_and_validity(**{k: g[k] for k in fields(0, 0, 0, 0, 0)})
