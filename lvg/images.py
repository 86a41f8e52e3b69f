"""Opening image files that a user hands in: the pixel limit is checked on the header, before any pixel is decoded."""

from __future__ import annotations

import os

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
