"""Photos and documents sent with a complaint: what they are (by their content, never their
name or the sender's word), whether they may be kept, their metadata stripped when the
reporter's identity is hidden, and thumbnails. No I/O.

A phone photo's EXIF block carries where it was taken (GPS), when, and the phone's make and
serial: for an anonymous complaint that is the reporter's address. Stripping re-encodes the
pixels alone, after turning them upright as EXIF said, so no metadata block survives."""

import io
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import filetype
from PIL import Image, ImageOps

IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
Image.MAX_IMAGE_PIXELS = 40_000_000  # a decompression bomb is refused, not decoded


class MediaRefused(ValueError):
    """A file that is not kept, with the reason (naming no content)."""


@dataclass(frozen=True)
class Checked:
    content: bytes  # as stored: stripped when the complaint hides its reporter
    mime: str
    stripped: bool
    thumbnail: bytes | None  # JPEG, for images


def sniff(content: bytes) -> str | None:
    """The type the bytes are, from their magic numbers."""
    kind = filetype.guess(content)
    return None if kind is None else str(kind.mime)


def check(content: bytes, *, allowed: Iterable[str], max_bytes: int, hide_identity: bool,
          thumbnail_pixels: int) -> Checked:
    if not content:
        raise MediaRefused("the file is empty")
    if len(content) > max_bytes:
        raise MediaRefused(f"the file is larger than {max_bytes} bytes")
    mime = sniff(content)
    if mime is None or mime not in set(allowed):
        raise MediaRefused(f"the content is {mime or 'of an unknown type'}; accepted: "
                           f"{', '.join(sorted(allowed))}")
    if mime not in IMAGE_FORMATS:
        return Checked(content, mime, stripped=False, thumbnail=None)
    try:
        image = Image.open(io.BytesIO(content))
        image.load()
        kept = strip_metadata(image, mime) if hide_identity else content
        return Checked(kept, mime, stripped=hide_identity, thumbnail=thumbnail(image, thumbnail_pixels))
    # A broken or hostile image raises whatever its decoder meets (OSError, SyntaxError for a
    # broken PNG, ValueError, a decompression bomb): each is a refusal, never a 500.
    except Exception as error:
        raise MediaRefused(f"the image cannot be read: {type(error).__name__}") from None


def strip_metadata(image: Image.Image, mime: str) -> bytes:
    """The pixels alone, upright, in the same format: no EXIF, XMP, ICC or text chunks."""
    upright = ImageOps.exif_transpose(image)
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    out = io.BytesIO()
    clean.save(out, format=IMAGE_FORMATS[mime])
    return out.getvalue()


def thumbnail(image: Image.Image, pixels: int) -> bytes:
    """A JPEG at most ``pixels`` on its longest side, without metadata."""
    small = ImageOps.exif_transpose(image).convert("RGB")
    small.thumbnail((pixels, pixels))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=80)
    return out.getvalue()


def public_address(host_addresses: Iterable[str]) -> bool:
    """Whether every address a URL's host resolves to is on the public internet: a fetched
    ``media_url`` must not reach the city's internal services (loopback, private, link-local
    such as a cloud's metadata address, multicast, reserved)."""
    found = False
    for text in host_addresses:
        found = True
        address = ipaddress.ip_address(text)
        if not address.is_global or address.is_multicast:
            return False
    return found
