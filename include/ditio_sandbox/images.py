"""Image bytes for the sandbox: content sniffing, generated photos, padding and resizes.

Generated originals are padded to an exact target size so a row's `fileSize` is known
without encoding the image first: JPEGs get COM segments right after SOI (any decoder
skips them), PNGs get a private ancillary chunk before IEND. Resizes always re-encode,
keep the aspect ratio and never upscale. A source Pillow cannot decode (HEIC without a
plugin, damaged JPEGs) resizes to a small grey JPEG placeholder instead of failing.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator
from functools import lru_cache

from PIL import Image, ImageDraw, ImageOps

JPEG = "image/jpeg"
PNG = "image/png"
HEIC = "image/heic"
OCTET = "application/octet-stream"
RESIZE_DIMENSIONS = (128, 640, 1980)
PHOTO_SIZES = ((640, 480), (640, 480), (480, 640), (800, 600), (1024, 768))

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_MAX_COM_PAYLOAD = 65533
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def sniff_content_type(head: bytes) -> str:
    """Return the content type that the leading bytes of a file announce."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return HEIC
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return OCTET


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _photo_scene(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A construction-site-ish scene: sky, ground, blocks and sensor noise."""
    width, height = size
    sky = tuple(rng.randrange(90, 200) for _ in range(3))
    ground = tuple(rng.randrange(60, 140) for _ in range(3))
    image = Image.new("RGB", size, sky)
    draw = ImageDraw.Draw(image)
    horizon = rng.randrange(height // 3, 2 * height // 3)
    draw.rectangle([0, horizon, width, height], fill=ground)
    for _ in range(rng.randrange(4, 12)):
        x, y = rng.randrange(width), rng.randrange(horizon // 2, height)
        box = [x, y, x + rng.randrange(20, width // 3), y + rng.randrange(10, height // 4)]
        draw.rectangle(box, fill=tuple(rng.randrange(256) for _ in range(3)))

    texture = Image.effect_noise((width // 4, height // 4), rng.randrange(20, 50))
    texture = texture.resize(size, Image.Resampling.BILINEAR).convert("RGB")
    grain = Image.effect_noise(size, 12).convert("RGB")
    return Image.blend(Image.blend(image, texture, 0.25), grain, 0.1)


def _diagram(rng: random.Random, label: str) -> Image.Image:
    """A screenshot-like PNG: flat colours, boxes and a caption."""
    image = Image.new("RGB", (640, 400), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    for row in range(rng.randrange(6, 16)):
        x, y = rng.randrange(600), 30 + row * 22
        draw.rectangle([x // 2, y, x // 2 + rng.randrange(40, 300), y + 16], fill=(0, 90, 160))
    draw.text((12, 8), label, fill=(20, 20, 20))
    return image


def encode_photo_jpeg(seed: str, limit: int) -> bytes:
    """Encode a generated photo whose JPEG is at most `limit` bytes."""
    rng = random.Random(seed)
    image = _photo_scene(rng, rng.choice(PHOTO_SIZES))
    for quality in (85, 70, 50, 30):
        data = _encode(image, "JPEG", quality=quality)
        if len(data) <= limit:
            return data
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
    return _encode(image.resize((64, 48)), "JPEG", quality=30)


@lru_cache(maxsize=1)
def tiny_jpeg() -> bytes:
    """A decodable 64x48 JPEG of a few hundred bytes."""
    return _encode(_photo_scene(random.Random("tiny"), (64, 48)), "JPEG", quality=60)


def encode_diagram_png(seed: str, label: str, limit: int) -> bytes:
    """Encode a generated PNG of at most `limit` bytes."""
    image = _diagram(random.Random(seed), label.encode("ascii", "replace").decode())
    data = _encode(image, "PNG", optimize=False)
    while len(data) > limit and image.width > 32:
        image = image.resize((image.width // 2, image.height // 2))
        data = _encode(image, "PNG")
    return data


def pad_jpeg(data: bytes, size: int, filler: bytes) -> bytes:
    """Insert COM segments after SOI so the JPEG is exactly `size` bytes long."""
    missing = size - len(data)
    if missing == 0:
        return data
    if missing < 4:
        raise ValueError(f"cannot pad a JPEG by {missing} bytes; pad by 0 or at least 4")
    segments = []
    while missing:
        payload = min(missing - 4, _MAX_COM_PAYLOAD)
        if 0 < missing - payload - 4 < 4:
            payload -= 4
        segments.append(b"\xff\xfe" + struct.pack(">H", payload + 2) + _fill(filler, payload))
        missing -= payload + 4
    return data[:2] + b"".join(segments) + data[2:]


def pad_png(data: bytes, size: int, filler: bytes) -> bytes:
    """Insert a private `sbPd` chunk before IEND so the PNG is exactly `size` bytes long."""
    missing = size - len(data)
    if missing == 0:
        return data
    if missing < 12:
        raise ValueError(f"cannot pad a PNG by {missing} bytes; pad by 0 or at least 12")
    payload = _fill(filler, missing - 12)
    crc = zlib.crc32(b"sbPd" + payload) & 0xFFFFFFFF
    chunk = struct.pack(">I", len(payload)) + b"sbPd" + payload + struct.pack(">I", crc)
    return data[:-12] + chunk + data[-12:]


def _fill(filler: bytes, length: int) -> bytes:
    repeats = length // len(filler) + 1
    return (filler * repeats)[:length]


def stream_padded(head: bytes, size: int, filler: bytes, chunk: int) -> Iterator[bytes]:
    """Yield `head` then trailing filler up to `size` bytes, never holding it all."""
    if size <= len(head):
        yield head[:size]
        return
    yield head
    remaining = size - len(head)
    block = _fill(filler, chunk)
    while remaining > 0:
        piece = block[: min(chunk, remaining)]
        remaining -= len(piece)
        yield piece


def resize(data: bytes, max_dimension: int) -> tuple[bytes, str]:
    """Return a re-encoded copy that fits in `max_dimension` and its content type."""
    content_type = sniff_content_type(data[:16])
    try:
        with Image.open(io.BytesIO(data)) as source:
            image = ImageOps.exif_transpose(source)
            image.thumbnail((max_dimension, max_dimension))
            # Saving would carry comments (the size padding), EXIF and ICC data over.
            image.info = {}
            if content_type == PNG:
                return _encode(image, "PNG"), PNG
            return _encode(image.convert("RGB"), "JPEG", quality=82), JPEG
    except _DECODE_ERRORS:
        return placeholder(max_dimension), JPEG


def placeholder(max_dimension: int) -> bytes:
    """A small grey JPEG served when a source cannot be decoded for resizing."""
    side = min(max_dimension, 16)
    return _encode(Image.new("RGB", (side, side), (128, 128, 128)), "JPEG", quality=50)


def exif_gps(data: bytes) -> tuple[float, float] | None:
    """Latitude and longitude from a JPEG's EXIF GPS block, if it has one."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            gps = image.getexif().get_ifd(0x8825)
    except _DECODE_ERRORS:
        return None
    try:
        lat = _degrees(gps[2], gps.get(1, "N"), "S")
        lon = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return round(lat, 6), round(lon, 6)


def _degrees(parts: tuple, ref: str, negative: str) -> float:
    degrees, minutes, seconds = (float(part) for part in parts)
    value = degrees + minutes / 60 + seconds / 3600
    return -value if str(ref).upper().startswith(negative) else value
