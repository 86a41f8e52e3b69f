"""Opening image files that a user hands in (the pixel limit is checked on the header, before any pixel is decoded),
and the one conversion between images and pixel tensors (:func:`images_to_tensor`, :func:`tensor_to_images`);
:func:`boxes_mask`, the pixels of layout boxes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lvg.files import InputFileError, check_regular_file

MAX_IMAGE_PIXELS = 4_000_000  # 2000x2000: a 64x64 image upscaled 31x fits; decompression bombs do not


class ImageFileError(ValueError):
    """An image file that cannot be read, or is larger than the pixel limit (the message names the file)."""


def open_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """The RGB image in ``path``; a folder, an unreadable file or one over ``max_pixels`` is an :class:`ImageFileError`
    (the size is read from the header, so a decompression bomb is refused before it is decoded)."""
    if os.path.isdir(path):
        raise ImageFileError(f"{path} is a folder, not an image file")
    try:
        check_regular_file(path)  # a FIFO or a device would hang the decoder or fill memory
    except InputFileError as e:
        raise ImageFileError(str(e)) from None
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageFileError(f"image {path} is {w}x{h} ({w * h} pixels); at most {max_pixels} pixels are read")
            return im.convert("RGB")
    except FileNotFoundError:
        raise ImageFileError(f"image not found: {path}") from None
    except Image.DecompressionBombError as e:
        raise ImageFileError(f"image {path} is too large to decode safely: {e}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as e:
        raise ImageFileError(f"cannot read image {path}: {e}") from None


# ----------------------------------------------------------------------------- images <-> tensors
# The one conversion between images (PIL, HWC uint8 arrays, files) and lvg's pixel tensors (uint8 [N, 3, H, W]).


def _rgb_array(image: Any, size: int | None) -> np.ndarray:
    """One image (PIL, path or HWC array) as an HWC uint8 RGB array; with ``size``, brought to ``size`` x ``size``
    (an integer upscale of it is averaged down, anything else resized bicubic)."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)  # pixel limit checked before decoding
    if isinstance(image, Image.Image):
        image = image.convert("RGB")
        w, h = image.size
        if size is not None and (w, h) != (size, size) and not (w == h and w % size == 0):
            image = image.resize((size, size), Image.BICUBIC)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {arr.shape}")
    if size is not None:
        if arr.shape[0] != arr.shape[1] or arr.shape[0] % size:
            raise ValueError(f"expected an RGB image of {size}x{size} (or an integer upscale), got shape {arr.shape}")
        k = arr.shape[0] // size
        if k > 1:
            arr = arr.reshape(size, k, size, k, 3).mean(axis=(1, 3)).round()
    return arr.astype(np.uint8, copy=False)


def images_to_tensor(images: Sequence[Any], size: int | None = None) -> torch.Tensor:
    """Images (PIL images, HWC uint8 arrays or file paths, opened with :func:`open_image`) -> uint8 [N, 3, H, W].

    ``size``: each image is brought to ``size`` x ``size`` first (an integer upscale, e.g. a saved 4x PNG, is
    averaged back down exactly; other sizes are resized bicubic); None keeps the images' own (equal) size.
    """
    if not len(images):
        raise ValueError("no images")
    arrays = [_rgb_array(im, size) for im in images]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images of different sizes cannot share a tensor: {sorted(shapes)}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels of any shape, float in [0, 1] (clamped, then rounded half to even) or integer -> uint8, same device."""
    t = pixels.detach()
    if t.dtype.is_floating_point:
        t = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
        t = (t.clamp(0, 1) * 255).round()
    return t.to(torch.uint8)


def tensor_to_arrays(pixels: torch.Tensor) -> np.ndarray:
    """Pixels [N, C, H, W] (uint8, or float in [0, 1], see :func:`to_uint8`) -> uint8 [N, H, W, C]."""
    if pixels.ndim != 4:
        raise ValueError(f"expected pixels [N, C, H, W], got shape {tuple(pixels.shape)}")
    return to_uint8(pixels.cpu()).permute(0, 2, 3, 1).numpy()


def tensor_to_images(pixels: torch.Tensor) -> list[Image.Image]:
    """Pixels [N, 3, H, W] (or [N, 1, H, W]; uint8, or float in [0, 1]) -> N PIL images (RGB, or L for one channel)."""
    arrays = tensor_to_arrays(pixels)
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """``img`` (uint8 HWC RGB) through a JPEG encoder at ``quality`` (4:2:0 chroma, as most codecs), decoded again."""
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def rgb_array(image: Any, canvas: int, error: type[ValueError] = ValueError) -> np.ndarray:
    """A PIL image, numpy array (HWC) or torch tensor (CHW or HWC) as float32 [canvas, canvas, 3] in 0..255 (what a
    world's referee reads). Integer upscales are block-averaged back; float input is taken as 0..1 when its maximum is
    at most 1, else as 0..255; anything else is an ``error`` naming the problem."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    else:
        if hasattr(image, "detach"):  # torch
            image = image.detach().cpu().numpy()
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
            arr = arr.transpose(1, 2, 0)
        if arr.dtype.kind not in "fiub":
            raise error(f"expected an image of numbers, got dtype {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise error("the image holds NaN or infinite values")
        scale = 255.0 if arr.dtype.kind == "f" and arr.size and float(arr.max()) <= 1.0 else 1.0
        arr = arr.astype(np.float32) * scale
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise error(f"expected an RGB image of shape [H, W, 3], got {tuple(arr.shape)}")
    h, w = arr.shape[:2]
    if h != w or h % canvas:
        raise error(f"expected a {canvas}x{canvas} image or an integer upscale of one, got {w}x{h}")
    k = h // canvas
    if k > 1:
        arr = arr.reshape(canvas, k, canvas, k, 3).mean(axis=(1, 3))
    return arr


def boxes_mask(boxes: list[tuple[float, float, float, float]], canvas: int, pad: int = 0) -> np.ndarray:
    """Bool [canvas, canvas]: the pixels of ``boxes`` (x0, y0, x1, y1), each grown by ``pad`` px, clipped."""
    mask = np.zeros((canvas, canvas), bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, int(y0) - pad) : min(canvas, int(np.ceil(y1)) + pad),
             max(0, int(x0) - pad) : min(canvas, int(np.ceil(x1)) + pad)] = True  # fmt: skip
    return mask
