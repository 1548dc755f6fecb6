"""tf_faceedit.images: pixel conversions (numpy and TensorFlow twins), the foreground-attention rule, header parsing of
every accepted format, the size guard, reading (with alpha) and atomic writing."""

import logging
import struct

import cv2
import numpy as np
import pytest

from tests import hostile
from tf_faceedit import images
from tf_faceedit.errors import DataError


def _photo(height=30, width=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# -- pixel values ---------------------------------------------------------------------------------------------------


def test_conversions_golden_and_round_trip():
    out = images.to_uint8(np.array([-1.0, -0.5, 0.0, 1.0, 1.5, -3.0, np.nan, np.inf, -np.inf], np.float32))
    np.testing.assert_array_equal(out, [0, 64, 128, 255, 255, 0, 128, 255, 0])  # 63.75 -> 64, 127.5 -> 128 (even)
    every = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(images.to_uint8(images.to_float(every)), every)
    np.testing.assert_allclose(images.to_float(np.array([0, 255], np.uint8)), [-1.0, 1.0])
    floats = np.array([0.25, -0.5], np.float32)
    assert images.ensure_float(floats) is not floats and np.array_equal(images.ensure_float(floats), floats)
    np.testing.assert_allclose(images.ensure_float(np.array([255], np.uint8)), [1.0])
    np.testing.assert_array_equal(
        images.mask_to_uint8(np.array([0.0, 0.5, 1.0, 2.0, -1.0, np.nan])), [0, 128, 255, 255, 0, 0]
    )


def test_conversions_match_the_formulas_they_replace():
    """The copies replaced by images.* used these formulas: the numbers must not move."""
    x = np.random.default_rng(1).uniform(-1.2, 1.2, 20000).astype(np.float32)
    np.testing.assert_array_equal(images.to_uint8(x), np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8))
    u = np.random.default_rng(2).integers(0, 256, 5000).astype(np.uint8)
    np.testing.assert_array_equal(images.to_float(u), u.astype(np.float32) / 127.5 - 1.0)
    m = np.random.default_rng(3).uniform(0.0, 1.0, 20000).astype(np.float32)
    np.testing.assert_array_equal(images.mask_to_uint8(m), np.round(m * 255).astype(np.uint8))


def test_tensorflow_twins_equal_numpy():
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(4).uniform(-1.2, 1.2, (3, 5, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(images.to_uint8_tf(tf.constant(x)).numpy(), images.to_uint8(x))
    u = np.random.default_rng(5).integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    np.testing.assert_array_equal(images.to_float_tf(tf.constant(u)).numpy(), images.to_float(u))


def test_foreground_attention_numpy_and_backend_tensors():
    import keras

    single = np.random.default_rng(6).uniform(size=(2, 4, 4, 1)).astype(np.float32)
    several = np.random.default_rng(7).dirichlet(np.ones(3), size=(2, 4, 4)).astype(np.float32)
    assert images.foreground_attention(single) is single
    np.testing.assert_allclose(images.foreground_attention(several), 1.0 - several[..., 2:])
    tensor = keras.ops.convert_to_tensor(several)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(images.foreground_attention(tensor)), 1.0 - several[..., 2:], rtol=1e-6
    )


# -- headers --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ext, params",
    [
        (".jpg", []),
        (".png", []),
        (".gif", []),
        (".bmp", []),
        (".tiff", []),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    ],
)
def test_header_of_every_format_matches_the_decoded_size(ext, params):
    ok, data = cv2.imencode(ext, _photo(37, 53), params)
    assert ok
    header = images.header_of_bytes(data.tobytes())
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert (header.height, header.width) == decoded.shape[:2] == (37, 53)
    assert header.format == {".jpg": "jpeg", ".tiff": "tiff"}.get(ext, ext[1:]) and not header.has_alpha


@pytest.mark.parametrize("ext", [".png", ".tiff", ".webp"])
def test_header_says_when_there_is_alpha(ext):
    rgba = np.dstack([_photo(), np.full((30, 40), 9, np.uint8)])
    assert images.header_of_bytes(cv2.imencode(ext, rgba)[1].tobytes()).has_alpha
    gray = cv2.imencode(ext, _photo()[..., 0])[1].tobytes()
    assert images.header_of_bytes(gray).width == 40 and not images.header_of_bytes(gray).has_alpha


def test_jpeg_header_after_long_comment_and_app_segments():
    bomb = hostile.jpeg_bomb(16000, 16000, comment_bytes=200_000)
    assert bomb.find(b"\xff\xc0") > 65536 * 3  # beyond any fixed prefix scan
    header = images.header_of_bytes(bomb)
    assert (header.width, header.height) == (16000, 16000)
    jpeg = hostile.encode(hostile._face(), ".jpg")
    app = b"\xff\xe1" + struct.pack(">H", 65535) + b"E" * 65533
    many = jpeg[:2] + app * 3 + b"\xff\xfe\x00\x02" + jpeg[2:]  # APP1 segments and an empty comment
    assert (images.header_of_bytes(many).width, images.header_of_bytes(many).height) == (44, 54)
    assert cv2.imdecode(np.frombuffer(many, np.uint8), cv2.IMREAD_COLOR).shape == (54, 44, 3)


def test_jpeg_stray_bytes_and_fill_bytes_are_skipped_like_libjpeg():
    jpeg = hostile.encode(hostile._face(), ".jpg")
    sof = jpeg.find(b"\xff\xc0")
    odd = jpeg[:sof] + b"\x00\x11garbage" + b"\xff\xff\xff" + jpeg[sof + 1 :]  # stray bytes, then fill bytes
    assert (images.header_of_bytes(odd).width, images.header_of_bytes(odd).height) == (44, 54)


def test_malformed_headers_are_refused(tmp_path):
    jpeg = hostile.encode(hostile._face(), ".jpg")
    sof = jpeg.find(b"\xff\xc0")
    sos = jpeg.find(b"\xff\xda")
    cases = {
        "empty": b"",
        "unknown": b"P6\n4 4\n255\n" + bytes(48),
        "jpeg cut before SOF": jpeg[:sof],
        "jpeg without SOF": jpeg[:sof] + jpeg[sos:],
        "png cut in IHDR": hostile.encode(hostile._face(), ".png")[:20],
        "png zero width": hostile.huge_png(0, 8)[:64],
        "bmp cut": b"BM" + bytes(10),
    }
    for i, (name, data) in enumerate(cases.items()):
        with pytest.raises(images.HeaderError):
            images.header_of_bytes(data)
        (tmp_path / f"{i}.img").write_bytes(data)
        assert not images.check_file(tmp_path / f"{i}.img"), name


def test_bigtiff_and_bmp_core_headers():
    entries = struct.pack("<HHQQ", 256, 3, 1, 70) + struct.pack("<HHQQ", 257, 4, 1, 90)
    bigtiff = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2) + entries
    header = images.header_of_bytes(bigtiff)
    assert (header.format, header.width, header.height) == ("tiff", 70, 90)
    core = b"BM" + bytes(12) + struct.pack("<IHHHH", 12, 33, 44, 1, 24)
    assert (images.header_of_bytes(core).width, images.header_of_bytes(core).height) == (33, 44)


def test_size_guard_refuses_before_decoding(tmp_path):
    path = tmp_path / "bomb.jpg"
    path.write_bytes(hostile.jpeg_bomb())
    with pytest.raises(DataError, match=r"bomb.jpg declares 16000x16000 pixels, more than the 67 Mpx") as info:
        images.read_header(path)
    assert "\n" not in str(info.value)
    for read in (images.read_image, images.read_image_alpha, images.read_mask):
        with pytest.raises(DataError, match="16000x16000"):
            read(path)
    assert not images.check_file(path) and images.check_file(path, max_pixels=None)
    assert images.read_header(path, max_pixels=None).pixels == 16000 * 16000
    small = tmp_path / "small.png"
    small.write_bytes(hostile.encode(hostile._face(), ".png"))
    with pytest.raises(DataError, match=r"declares 44x54 pixels, more than the 0 Mpx"):
        images.read_image(small, "--image", max_pixels=100)


# -- reading and writing --------------------------------------------------------------------------------------------


def test_read_errors_are_one_line_naming_the_file(tmp_path):
    for name, data in hostile.unreadable_image_bytes().items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError) as info:
            images.read_image(path, "--image")
        message = str(info.value)
        assert name in message and "--image" in message and "\n" not in message, message
    with pytest.raises(DataError, match="--mask .*missing.png does not exist"):
        images.read_mask(tmp_path / "missing.png", "--mask")
    with pytest.raises(DataError, match="is not a file"):
        images.read_image(tmp_path)


def test_read_image_alpha(tmp_path):
    rgb, alpha = hostile.rgba_photo(_photo(20, 30), border=5)
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), alpha]))
    got_rgb, got_alpha = images.read_image_alpha(tmp_path / "rgba.png")
    np.testing.assert_array_equal(got_rgb, rgb)
    np.testing.assert_array_equal(got_alpha, alpha)
    np.testing.assert_array_equal(images.read_image(tmp_path / "rgba.png"), rgb)
    deep = np.dstack([rgb, alpha]).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "rgba16.png"), deep[..., [2, 1, 0, 3]])
    np.testing.assert_array_equal(images.read_image_alpha(tmp_path / "rgba16.png")[1], alpha)
    cv2.imwrite(str(tmp_path / "plain.jpg"), rgb)
    assert images.read_image_alpha(tmp_path / "plain.jpg")[1] is None


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif"])
def test_write_keeps_alpha(ext, tmp_path):
    rgb, alpha = hostile.rgba_photo(_photo(20, 30), border=5)
    path = images.write_image(tmp_path / f"out{ext}", rgb, alpha, params=[cv2.IMWRITE_WEBP_QUALITY, 101])
    got_rgb, got_alpha = images.read_image_alpha(path)
    np.testing.assert_array_equal(got_alpha, alpha)
    if ext != ".webp":
        np.testing.assert_array_equal(got_rgb, rgb)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{ext}"]  # no temporary file left


def test_write_to_jpeg_drops_alpha_with_a_warning(tmp_path, caplog):
    rgb, alpha = hostile.rgba_photo(_photo(20, 30), border=5)
    with caplog.at_level(logging.WARNING, logger="tf_faceedit"):
        images.write_image(tmp_path / "out.jpg", rgb, alpha)
    assert "transparency is dropped" in caplog.text
    assert images.read_image_alpha(tmp_path / "out.jpg")[1] is None


def test_write_errors(tmp_path):
    rgb = _photo()
    with pytest.raises(DataError, match=r"--out .*edited.xyz: '.xyz' is not an image format .*\.png") as info:
        images.write_image(tmp_path / "edited.xyz", rgb, what="--out")
    assert "\n" not in str(info.value) and not (tmp_path / "edited.xyz").exists()
    with pytest.raises(DataError, match="no extension"):
        images.check_output_extension(tmp_path / "edited")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="cannot write output .*file/sub/a.png: a file stands where a folder must be"):
        images.write_image(tmp_path / "file" / "sub" / "a.png", rgb)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(DataError, match="folder.png: it is a folder"):
        images.write_image(tmp_path / "folder.png", rgb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.png"]
    with pytest.raises(ValueError, match="uint8"):
        images.write_image(tmp_path / "a.png", rgb.astype(np.float32))
    gray = images.write_image(tmp_path / "gray.png", rgb[..., 0])
    np.testing.assert_array_equal(images.read_mask(gray), rgb[..., 0])
