"""Known answers for the paper preprocessing: crop, resize, range, low-saturation clip."""
import numpy as np
import pytest
from PIL import Image

from tasksim.probe.preprocess import (
    center_crop,
    crop_and_resize,
    is_low_saturation,
    network_input,
    scale_images,
    to_rgb_uint8,
)
from tasksim.tasks import LOW_SATURATION_TASKS


def test_center_crop_takes_the_middle_square():
    a = np.arange(4 * 6).reshape(4, 6, 1)
    c = center_crop(a)
    assert c.shape == (4, 4, 1)
    np.testing.assert_array_equal(c[..., 0], a[:, 1:5, 0])
    assert center_crop(a.transpose(1, 0, 2)).shape == (4, 4, 1)


def test_resize_of_constant_image_is_constant_and_square():
    img = Image.fromarray(np.full((300, 500, 3), 77, np.uint8))
    out = crop_and_resize(img, 256)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert (out == 77).all()


def test_crop_happens_before_resize():
    # left third red, middle third green, right third blue: the centre crop keeps only green
    arr = np.zeros((100, 300, 3), np.uint8)
    arr[:, :100, 0] = 255
    arr[:, 100:200, 1] = 255
    arr[:, 200:, 2] = 255
    out = crop_and_resize(Image.fromarray(arr), 64)
    assert (out[..., 1] == 255).all() and (out[..., 0] == 0).all() and (out[..., 2] == 0).all()


def test_range_maps_0_255_to_minus1_plus1():
    imgs = np.array([0, 255, 51], np.uint8).reshape(1, 1, 3, 1).repeat(3, axis=3)
    x = scale_images(imgs, low_saturation=False)
    assert x.shape == (1, 3, 1, 3)
    np.testing.assert_allclose(x[0, 0, 0], [-1.0, 1.0, 51 / 255 * 2 - 1], atol=1e-6)


def test_low_saturation_clips_to_0p1_0p9_then_maps_to_minus0p8_plus0p8():
    # Taskonomy load_ops: np.clip(img, 0.1, 0.9) then rescale_image assuming [0, 1]
    imgs = np.array([0, 255, 128, 20], np.uint8).reshape(1, 1, 4, 1).repeat(3, axis=3)
    x = scale_images(imgs, low_saturation=True)[0, 0, 0]
    np.testing.assert_allclose(x, [-0.8, 0.8, 128 / 255 * 2 - 1, -0.8], atol=1e-6)


def test_the_fourteen_low_saturation_tasks():
    assert len(LOW_SATURATION_TASKS) == 14
    assert is_low_saturation("rgb2depth") and is_low_saturation("normal")
    assert not is_low_saturation("segment_semantic") and not is_low_saturation("class_scene")
    assert not is_low_saturation("my_own_model")


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P"])
def test_grayscale_rgba_16bit_and_palette_images(mode):
    if mode == "I;16":
        img = Image.fromarray(np.full((10, 12), 65535, np.uint16))
        expect = 255
    elif mode == "L":
        img = Image.fromarray(np.full((10, 12), 200, np.uint8), "L")
        expect = 200
    elif mode == "RGBA":
        arr = np.zeros((10, 12, 4), np.uint8)
        arr[..., 0] = 10
        arr[..., 3] = 0  # alpha dropped, colour kept (as Taskonomy's loader)
        img = Image.fromarray(arr, "RGBA")
        expect = None
    else:
        img = Image.fromarray(np.full((10, 12), 3, np.uint8), "P")
        img.putpalette([0, 0, 0] * 3 + [90, 90, 90] + [0, 0, 0] * 252)
        expect = 90
    out = to_rgb_uint8(img)
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8
    if expect is None:
        assert (out[..., 0] == 10).all() and (out[..., 1:] == 0).all()
    else:
        assert (out == expect).all()


def test_network_input_layout_and_channels_last():
    imgs = np.zeros((2, 8, 8, 3), np.uint8)
    t = network_input(imgs, False, channels_last=True)
    assert tuple(t.shape) == (2, 3, 8, 8)
    assert t.is_contiguous(memory_format=__import__("torch").channels_last)
