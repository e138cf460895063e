"""Turn an HTTP request body into an RGB image, or a 4xx :class:`RequestError`.

Accepted: the raw body with ``Content-Type: image/jpeg`` or ``image/png``, or
``multipart/form-data`` whose first file part is such an image. The byte
size is checked before reading (Content-Length) and after; the pixel count is
read from the image header by PIL *before* any decoding, so a small PNG that
claims 20000x20000 pixels is refused without allocating them.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/png": "PNG"}
IMAGE_FORMATS = ("JPEG", "PNG")
MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # the first bytes of a JPEG and of a PNG


@dataclass(frozen=True)
class RequestError(Exception):
    """A bad request: HTTP status and a one-line message for the JSON body."""

    status: int
    message: str


def media_type(content_type: str | None) -> str:
    """``image/png; charset=x`` -> ``image/png``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_length(content_length: str | None, max_bytes: int) -> None:
    """Refuse a body announced larger than ``max_bytes`` before reading it."""
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        raise RequestError(413, f"request body of {content_length} bytes exceeds the limit of {max_bytes}")


def image_part(body: bytes, content_type: str | None) -> tuple[bytes, str]:
    """The image bytes and their media type, from a raw or multipart body."""
    kind = media_type(content_type)
    if kind == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
        )
        for part in message.iter_parts() if message.is_multipart() else ():
            if part.get_filename() is not None or media_type(part.get_content_type()) in IMAGE_TYPES:
                return part.get_payload(decode=True) or b"", media_type(part.get_content_type())
        raise RequestError(400, "multipart body has no file part")
    return body, kind


def decode_image(body: bytes, content_type: str | None, max_bytes: int, max_pixels: int) -> np.ndarray:
    """An HxWx3 uint8 RGB array, or RequestError (400, 413 or 415)."""
    if len(body) > max_bytes:
        raise RequestError(413, f"request body of {len(body)} bytes exceeds the limit of {max_bytes}")
    data, kind = image_part(body, content_type)
    if kind not in IMAGE_TYPES and kind != "application/octet-stream":
        raise RequestError(415, f"content type {kind or 'none'!r} is not one of {', '.join(sorted(IMAGE_TYPES))} or multipart/form-data")
    if not data:
        raise RequestError(400, "empty image")
    if not data.startswith(MAGIC):
        raise RequestError(400, "not a readable JPEG or PNG image")
    try:
        # Only JPEG and PNG parsers see the bytes. ImportError too: ultralytics, loaded in the same
        # replica, patches Image.open to import a HEIF plugin when Pillow cannot identify a file.
        image = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))  # reads the header only
    except Image.DecompressionBombError as exc:  # PIL's own ceiling, above ours by default
        raise RequestError(413, f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, ImportError):
        raise RequestError(400, "not a readable JPEG or PNG image") from None
    width, height = image.size
    if width * height > max_pixels:
        raise RequestError(413, f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
    try:
        return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise RequestError(400, f"cannot decode the image: {exc}") from None
