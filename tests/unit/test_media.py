"""Attachments' checks: type by content, size, EXIF (GPS) stripped for hidden reporters,
thumbnails, and which addresses a media URL may be fetched from."""

import io

import pytest
from PIL import Image

from services.intake.media import MediaRefused, check, public_address

ALLOWED = ["image/jpeg", "image/png", "application/pdf"]
GPS_IFD = 0x8825


def photo_with_gps(size: tuple[int, int] = (800, 600)) -> bytes:
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[GPS_IFD] = {1: "S", 2: (3.0, 47.0, 44.0), 3: "E", 4: (102.0, 15.0, 33.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def photo_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 128, 0)).save(out, format="PNG")
    return out.getvalue()


def test_a_png_is_kept_with_a_thumbnail() -> None:
    checked = check(photo_png(), allowed=ALLOWED, max_bytes=5000, hide_identity=True,
                    thumbnail_pixels=160)
    assert checked.mime == "image/png" and checked.thumbnail is not None


def test_a_hidden_reporters_photo_loses_its_exif_and_gps() -> None:
    original = photo_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD), "the fixture carries GPS"
    checked = check(original, allowed=ALLOWED, max_bytes=5_000_000, hide_identity=True,
                    thumbnail_pixels=160)
    kept = Image.open(io.BytesIO(checked.content))
    assert checked.stripped and checked.mime == "image/jpeg"
    assert dict(kept.getexif()) == {} and b"Exif" not in checked.content
    assert b"PhoneMaker" not in checked.content
    assert kept.size == (800, 600)


def test_a_named_reporters_photo_is_kept_as_sent_with_a_thumbnail() -> None:
    original = photo_with_gps()
    checked = check(original, allowed=ALLOWED, max_bytes=5_000_000, hide_identity=False,
                    thumbnail_pixels=160)
    assert checked.content == original and not checked.stripped
    assert checked.thumbnail is not None
    thumb = Image.open(io.BytesIO(checked.thumbnail))
    assert max(thumb.size) == 160 and dict(thumb.getexif()) == {}


def test_the_type_is_read_from_the_content_not_the_name() -> None:
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
    assert check(pdf, allowed=ALLOWED, max_bytes=1000, hide_identity=True,
                 thumbnail_pixels=160).mime == "application/pdf"
    with pytest.raises(MediaRefused, match="accepted"):
        check(b"<html><script>alert(1)</script></html>", allowed=ALLOWED, max_bytes=1000,
              hide_identity=False, thumbnail_pixels=160)
    with pytest.raises(MediaRefused, match="cannot be read"):
        check(b"\xff\xd8\xff\xe0" + b"\x00" * 64, allowed=ALLOWED, max_bytes=1000,
              hide_identity=False, thumbnail_pixels=160)


def test_size_and_emptiness_are_refused() -> None:
    with pytest.raises(MediaRefused, match="larger than 100 bytes"):
        check(photo_with_gps(), allowed=ALLOWED, max_bytes=100, hide_identity=False,
              thumbnail_pixels=160)
    with pytest.raises(MediaRefused, match="empty"):
        check(b"", allowed=ALLOWED, max_bytes=100, hide_identity=False, thumbnail_pixels=160)


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["10.1.2.3"], ["169.254.169.254"], ["::1"],
                                       ["192.168.1.10"], ["8.8.8.8", "172.16.0.1"], []])
def test_internal_addresses_are_not_fetched(addresses: list[str]) -> None:
    assert not public_address(addresses)


def test_public_addresses_are_fetched() -> None:
    assert public_address(["8.8.8.8", "2001:4860:4860::8888"])
