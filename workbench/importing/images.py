"""Opening images safely: verify at import, decode within a pixel limit, and small renditions.

Pillow reads only the header at ``Image.open``, so the size is checked before any pixel is
decoded: a 30000x30000 PNG of 875 KB (a decompression bomb) is refused without allocating its
2.7 GB. Renditions are bounded (long side at most 1600 px), cached by the file's content hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.importing.limits import Limits, size

if TYPE_CHECKING:
    from types import ModuleType

    from PIL.Image import Image as PILImage

FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP"})
RENDITION_SIDE = 1600  # long side of what the UI shows, at most
MIN_SIDE = 256  # tiny images (8x8 digits) are upscaled, nearest-neighbour, to this short side
_DEFAULT = Limits()


class ImageRefused(Exception):
    """The file is not an image the workbench will show or learn from; the message says why, with
    no server path in it."""


@dataclass(frozen=True)
class ImageFacts:
    format: str
    width: int
    height: int


def _pil() -> ModuleType:
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    # The workbench checks width x height against its own limit before decoding; Pillow's own
    # bomb check (a warning above ~89 MP, an error above ~179 MP) is then only a second net.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    return Image


def _open(path: Path, max_pixels: int, max_bytes: int | None) -> PILImage:
    Image = _pil()
    try:
        n_bytes = path.stat().st_size
    except OSError as exc:
        raise ImageRefused(f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
    if n_bytes == 0:
        raise ImageRefused("the file is empty (0 bytes)")
    if max_bytes is not None and n_bytes > max_bytes:
        raise ImageRefused(
            f"the file has {size(n_bytes)}, over the limit of {size(max_bytes)} (limits.max_image_bytes)"
        )
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageRefused(
            f"{count}, over the limit of {max_pixels:,} (limits.max_image_pixels); a decompression bomb?"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        kind = (
            "not an image Pillow can read"
            if type(exc).__name__ == "UnidentifiedImageError"
            else f"unreadable image ({type(exc).__name__})"
        )
        head = path.open("rb").read(256)
        if b"<svg" in head.lower() or head.lstrip().startswith(b"<?xml"):
            kind = "an SVG (vector) image, which is not supported: convert it to PNG"
        raise ImageRefused(kind) from None
    if image.format not in FORMATS:
        fmt = image.format
        image.close()
        raise ImageRefused(f"{fmt} images are not supported (use {', '.join(sorted(FORMATS))})")
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise ImageRefused(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        image.close()
        raise ImageRefused(
            f"{width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,} (limits.max_image_pixels)"
        )
    return image


def _decode(image: PILImage, draft: tuple[int, int] | None = None) -> None:
    if draft is not None and image.format == "JPEG":
        image.draft("RGB", draft)  # JPEG decodes at a reduced scale: faster, less memory
    try:
        image.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, struct.error, ...
        reason = "truncated" if "truncat" in str(exc).lower() else f"undecodable ({type(exc).__name__})"
        raise ImageRefused(f"the image data is {reason}") from None


def inspect_image(
    path: Path, *, max_pixels: int = _DEFAULT.max_image_pixels, max_bytes: int | None = _DEFAULT.max_image_bytes
) -> ImageFacts:
    """Open and fully decode the image: its format and size, or ImageRefused saying why not."""
    image = _open(Path(path), max_pixels, max_bytes)
    with image:
        if image.format is None:  # Image.open names the format of every file it opens
            raise ImageRefused("the image format is not known")
        facts = ImageFacts(image.format, *image.size)
        _decode(image)
    return facts


def open_image(
    path: Path, *, max_pixels: int = _DEFAULT.max_image_pixels, draft: tuple[int, int] | None = None
) -> PILImage:
    """The decoded image (a PIL Image, caller closes), within the pixel limit, or ImageRefused."""
    image = _open(Path(path), max_pixels, None)
    try:
        _decode(image, draft)
    except ImageRefused:
        image.close()
        raise
    return image


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def rendition(
    path: Path,
    cache: Path,
    *,
    max_side: int = RENDITION_SIDE,
    max_pixels: int = _DEFAULT.max_image_pixels,
    min_side: int = MIN_SIDE,
) -> Path:
    """A PNG of the image at most `max_side` on its long side (tiny images upscaled so their short
    side is `min_side`, nearest-neighbour), cached under `cache` by the file's content hash."""
    key = content_hash(path)
    target = cache / key[:2] / f"{key}-{max_side}-{min_side}.png"
    if target.is_file():
        return target
    Image = _pil()
    with open_image(path, max_pixels=max_pixels, draft=(max_side, max_side)) as image:
        shown = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    w, h = shown.size
    if max(w, h) > max_side:
        shown.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    elif min(w, h) < min_side:
        factor = -(-min_side // max(min(w, h), 1))
        factor = max(1, min(factor, max_side // max(w, h)))
        shown = shown.resize((w * factor, h * factor), Image.Resampling.NEAREST)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            shown.save(f, format="PNG", compress_level=1)  # fast; the cache holds it once
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
