"""Probe-image preprocessing exactly as the RSA and attribution papers (docs/methods.md).

1. centre square crop (side = shorter side),
2. resize to ``resolution`` x ``resolution`` (bilinear, as Taskonomy's ``resize_image`` with
   ``interp_order=1``),
3. scale [0, 1] -> [-1, 1];
4. for the 14 *low-saturation* tasks (``tasksim.tasks.LOW_SATURATION_TASKS``) the [0, 1] image is
   first clipped to [0.1, 0.9] and then mapped with the same [0, 1] -> [-1, 1] rule, so the
   network sees values in [-0.8, 0.8]. This is Taskonomy's ``resize_rescale_image_low_sat``
   (``load_ops.py``: ``np.clip(img, 0.1, 0.9)`` then ``rescale_image`` with the default
   ``current_scale=None``, i.e. the input is assumed to be in [0, 1]).

Steps 1-2 happen once when the probe set is frozen (uint8 in the probe file); steps 3-4 happen per
task at extraction / attribution time (:func:`network_input`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from PIL import Image

from tasksim.tasks import LOW_SATURATION_TASKS, canonical, is_known

LOW_SAT_RANGE: tuple[float, float] = (0.1, 0.9)


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Convert any PIL image (L, LA, P, RGB, RGBA, I;16, I, F) to an ``[H, W, 3]`` uint8 array.

    Alpha is dropped (as Taskonomy's ``load_raw_image``: ``img[:, :, :3]``); grayscale is
    replicated to three channels; 16-bit images are scaled by 255/65535.
    """
    mode = img.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(np.rint(arr * 255.0 if arr.max() <= 1.0 else arr), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in {"RGBA", "LA", "PA"} or (mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        return np.asarray(img, dtype=np.uint8)[..., :3].copy()
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def center_crop(arr: np.ndarray) -> np.ndarray:
    """Centre square crop of an ``[H, W, C]`` array; the side is ``min(H, W)``."""
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return arr[top:top + s, left:left + s]


def resize_square(arr: np.ndarray, resolution: int) -> np.ndarray:
    """Resize a square ``[S, S, 3]`` uint8 image to ``resolution`` x ``resolution`` (bilinear)."""
    if arr.shape[0] == resolution and arr.shape[1] == resolution:
        return arr
    im = Image.fromarray(arr)
    return np.asarray(im.resize((resolution, resolution), Image.Resampling.BILINEAR), dtype=np.uint8)


def crop_and_resize(img: Image.Image, resolution: int = 256) -> np.ndarray:
    """Steps 1-2: any PIL image -> centre-cropped, resized ``[R, R, 3]`` uint8."""
    return resize_square(center_crop(to_rgb_uint8(img)), resolution)


def is_low_saturation(model: str, low_saturation_tasks: Iterable[str] = LOW_SATURATION_TASKS) -> bool:
    """Whether ``model`` (a task or model name) gets the low-saturation clip."""
    lowsat = {canonical(t) for t in low_saturation_tasks}
    return is_known(model) and canonical(model) in lowsat


def scale_images(images: np.ndarray, low_saturation: bool) -> np.ndarray:
    """Steps 3-4 on ``[N, H, W, 3]`` uint8: float32 ``[N, 3, H, W]`` in [-1, 1] ([-0.8, 0.8] low-sat)."""
    x = images.astype(np.float32) / 255.0
    if low_saturation:
        x = np.clip(x, *LOW_SAT_RANGE)
    x = x * 2.0 - 1.0
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def network_input(images: np.ndarray, low_saturation: bool, device: str | torch.device = "cpu",
                  channels_last: bool = False) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` batch -> network input tensor on ``device``."""
    t = torch.from_numpy(scale_images(images, low_saturation)).to(device)
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t
