"""File catalogue of a sandbox tenant: per-file metadata, bytes, resizes and a bounded cache.

A file's metadata is derived from (seed, file index) on demand, so a tenant with hundreds of
thousands of files holds no per-file bytes until they are requested. Kinds:

- `jpeg` / `png`: generated images padded to a size drawn from the seed;
- `photo`: a real file from `photos_dir`, served byte for byte;
- `sized`: a tiny real JPEG followed by filler bytes up to an exact size (used for
  `file_bytes=N` and `huge_files`); streamed, never held in memory. Below the tiny JPEG's
  own length the original is that JPEG cut short (no longer decodable).
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ditio_sandbox import images
from ditio_sandbox.model import mix, object_id

CHUNK = 64 * 1024
HOSTILE_NAMES = (
    "../../etc/passwd",
    "/abs/path.jpg",
    "a\\b.jpg",
    "..",
    "",
    "quote\"d 'name'.jpg",
    "ctrl\x00\x07\r\nname.jpg",
    "emoji 📷🏗️.jpg",
    "x" * 496 + ".jpg",
    "CON.jpg",
    "%2e%2e%2fencoded.jpg",
    " spaced name .jpg ",
    "photo\u202egpj.exe",
    "ÆØÅ æøå.JPG",
)
_EXTENSIONS = {images.JPEG: ".jpg", images.PNG: ".png", images.HEIC: ".heic"}


@dataclass(frozen=True, slots=True)
class Photo:
    path: Path
    size: int
    content_type: str
    gps: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class FileSpec:
    index: int
    file_id: str
    kind: str
    content_type: str
    size: int
    file_name: str
    original_name: str
    gps: tuple[float, float] | None
    photo: Photo | None = None


def load_photos(folder: str | Path) -> tuple[Photo, ...]:
    """Every image in `folder` (sorted by name), typed by its leading bytes."""
    photos = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        data = path.read_bytes()
        content_type = images.sniff_content_type(data[:16])
        if content_type == images.OCTET:
            continue
        gps = images.exif_gps(data) if content_type == images.JPEG else None
        photos.append(Photo(path, len(data), content_type, gps))
    return tuple(photos)


class ByteCache:
    """A thread-safe LRU of bytes bounded by total size; each value is built once."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[object, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._building: dict[object, threading.Lock] = {}

    def get(self, key: object, build: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = build()
            self._store(key, value)
        with self._lock:
            self._building.pop(key, None)
        return value

    def _store(self, key: object, value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            self._size += len(value)
            while self._size > self._max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)


class Body:
    """An original's bytes as a stream: a decodable head followed by periodic filler."""

    def __init__(self, content_type: str, size: int, head: bytes, filler: bytes = b"") -> None:
        self.content_type = content_type
        self.size = size
        self._head = head[:size]
        self._filler = filler

    def iter_range(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Yield bytes [start, stop) in chunks of at most CHUNK bytes."""
        stop = self.size if stop is None else min(stop, self.size)
        position = start
        while position < stop and position < len(self._head):
            end = min(stop, len(self._head), position + CHUNK)
            yield self._head[position:end]
            position = end
        while position < stop:
            end = min(stop, position + CHUNK)
            yield self._filler_slice(position - len(self._head), end - position)
            position = end

    def _filler_slice(self, offset: int, length: int) -> bytes:
        period = len(self._filler)
        start = offset % period
        repeats = (start + length) // period + 1
        return (self._filler * repeats)[start : start + length]


class FileCatalog:
    """Metadata and bytes for every file a tenant references, derived lazily from the seed."""

    def __init__(
        self,
        seed: int,
        *,
        photos: tuple[Photo, ...] = (),
        file_bytes: int | None = None,
        hostile_names: bool = False,
        cache_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.seed = seed
        self.photos = photos
        self.file_bytes = file_bytes
        self.hostile_names = hostile_names
        self.huge_files: dict[str, int] = {}
        self.created_seconds: list[int] = []
        self.machine = mix(seed, "machine", "file") & 0xFFFFFFFFFF
        self._filler = random.Random(f"filler:{seed}").randbytes(CHUNK)
        self._cache = ByteCache(cache_bytes)
        self.spec = lru_cache(maxsize=65536)(self._build_spec)

    def __len__(self) -> int:
        return len(self.created_seconds)

    def add(self, created_seconds: int) -> int:
        """Register a new file created at `created_seconds`; returns its index."""
        if len(self.created_seconds) >= 0xFFFFFF:
            raise ValueError("a tenant holds at most 16,777,215 files; lower parents_per_hour")
        self.created_seconds.append(created_seconds)
        return len(self.created_seconds) - 1

    def file_id(self, index: int) -> str:
        return object_id(self.created_seconds[index], self.machine, index)

    def index_of(self, file_id: str) -> int | None:
        """The index behind a file id, or None when the id is not one of ours."""
        if not isinstance(file_id, str) or len(file_id) != 24:
            return None
        try:
            index = int(file_id[-6:], 16)
        except ValueError:
            return None
        if index >= len(self.created_seconds) or self.file_id(index) != file_id:
            return None
        return index

    def _build_spec(self, index: int) -> FileSpec:
        file_id = self.file_id(index)
        draw = mix(self.seed, "file", index)
        kind, content_type, size, photo = self._kind(index, file_id, draw)
        original = photo.path.name if photo else self._original_name(index, content_type, draw)
        file_name = f"uploaded-{file_id[:10]}{_EXTENSIONS.get(content_type, '.bin')}"
        if self.hostile_names and draw % 3 == 0:
            file_name = HOSTILE_NAMES[(draw // 3) % len(HOSTILE_NAMES)]
            original = HOSTILE_NAMES[(draw // 7) % len(HOSTILE_NAMES)]
        gps = photo.gps if photo else self._generated_gps(draw)
        return FileSpec(index, file_id, kind, content_type, size, file_name, original, gps, photo)

    def _kind(self, index: int, file_id: str, draw: int) -> tuple[str, str, int, Photo | None]:
        if file_id in self.huge_files:
            return "sized", images.JPEG, self.huge_files[file_id], None
        if self.file_bytes is not None:
            return "sized", images.JPEG, self.file_bytes, None
        if self.photos and (index < len(self.photos) or draw % 4 == 0):
            photo = self.photos[
                index if index < len(self.photos) else (draw >> 8) % len(self.photos)
            ]
            return "photo", photo.content_type, photo.size, photo
        if draw % 5 == 0:
            return "png", images.PNG, 20_000 + (draw >> 16) % 100_000, None
        return "jpeg", images.JPEG, 32_000 + (draw >> 16) % 168_000, None

    def _original_name(self, index: int, content_type: str, draw: int) -> str:
        stamp = time.gmtime(self.created_seconds[index])
        if content_type == images.PNG:
            # Now and then a PNG carries a .jpg name: the type must come from the bytes.
            suffix = ".jpg" if draw % 7 == 0 else ".png"
            return time.strftime("Skjermbilde %Y-%m-%d kl. %H.%M.%S", stamp) + suffix
        styles = ("IMG_%Y%m%d_%H%M%S.jpg", "DSC_{n:04d}.JPG", "Bilde fra byggeplass {n}.jpg")
        style = styles[(draw >> 4) % len(styles)]
        return time.strftime(style, stamp).format(n=index % 10000)

    @staticmethod
    def _generated_gps(draw: int) -> tuple[float, float] | None:
        if (draw >> 24) % 5:
            return None
        return 59.0 + (draw >> 28) % 5000 / 1000, 5.0 + (draw >> 40) % 6000 / 1000

    def body(self, spec: FileSpec) -> Body:
        """The original bytes of a file as a stream."""
        if spec.kind == "sized":
            return Body(spec.content_type, spec.size, self._sized_head(spec), self._filler)
        return Body(spec.content_type, spec.size, self.original_bytes(spec))

    def original_bytes(self, spec: FileSpec) -> bytes:
        if spec.kind == "sized":
            return b"".join(self.body(spec).iter_range())
        return self._cache.get(("original", spec.index), lambda: self._build_original(spec))

    def _build_original(self, spec: FileSpec) -> bytes:
        if spec.photo is not None:
            return spec.photo.path.read_bytes()
        label = f"{self.seed}:{spec.index}"
        if spec.kind == "png":
            data = images.encode_diagram_png(label, spec.file_id, spec.size - 12)
            return images.pad_png(data, spec.size, self._filler)
        data = images.encode_photo_jpeg(label, spec.size - 4)
        return images.pad_jpeg(data, spec.size, self._filler)

    def _sized_head(self, spec: FileSpec) -> bytes:
        template = images.tiny_jpeg()
        marker = spec.file_id.encode()
        return template[:2] + b"\xff\xfe\x00\x1a" + marker + template[2:]

    def resized(self, spec: FileSpec, dimension: int) -> tuple[bytes, str]:
        """A resize of the file, cached; content type follows the re-encoded bytes."""
        data = self._cache.get(
            ("resized", spec.index, dimension), lambda: self._resize(spec, dimension)
        )
        return data, images.sniff_content_type(data[:16])

    def _resize(self, spec: FileSpec, dimension: int) -> bytes:
        source = self._sized_head(spec) if spec.kind == "sized" else self.original_bytes(spec)
        return images.resize(source, dimension)[0]
