"""Uploaded images: allowed types, and decoding that refuses decompression bombs before any pixel is read."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

# Content type -> the one Pillow format allowed to decode it.
ALLOWED_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}


class ImageRejected(ValueError):
    """The upload is not a decodable image within the limits (HTTP 422)."""


def decode_image(data: bytes, content_type: str, max_pixels: int) -> Image.Image:
    """Decode an upload to RGB. The header is checked (size <= ``max_pixels``) and ``verify()``-ed first;
    only then are the pixels loaded. Raises ``ImageRejected`` naming the problem."""
    fmt = ALLOWED_TYPES.get(content_type)
    formats = [fmt] if fmt else list(ALLOWED_TYPES.values())
    try:
        with Image.open(io.BytesIO(data), formats=formats) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageRejected(f"the image is {w}x{h} ({w * h} pixels); at most {max_pixels} pixels are allowed")
            im.verify()
        with Image.open(io.BytesIO(data), formats=formats) as im:
            im.load()
            return im.convert("RGB")
    except ImageRejected:
        raise
    except Image.DecompressionBombError as e:
        raise ImageRejected(f"the image is too large to decode safely: {e}") from None
    except UnidentifiedImageError:
        raise ImageRejected(f"the file is not a decodable {content_type} image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageRejected(f"cannot decode the image: {e}") from None
