"""Thumbnails of document versions: text drawn on a page, images scaled down (Pillow), a PDF's first page (PDFium).

Rendering reads untrusted bytes, so it is bounded: at most MAX_SOURCE bytes are spooled to a temporary file (never
all in memory), an image's pixel count is checked from its header before it is decoded, and only the first
TEXT_BYTES of a text are read. A type without a renderer has no preview (None); a file a renderer chokes on raises
PreviewFailed, which the document worker records (the document itself works as before).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = (256, 256)  # the thumbnail's bounding box
MAX_SOURCE = 64 * 1024 * 1024  # bigger files get no preview (PreviewFailed): rendering them is not worth the cost
MAX_PIXELS = 50_000_000  # an image above this is refused from its header, before decoding (a decompression bomb)
TEXT_BYTES = 8 * 1024
TEXT_LINES = 18
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/tiff", "image/bmp"})
TEXT_TYPES = frozenset({"application/json", "application/xml"})


class PreviewFailed(Exception):
    """The bytes could not be rendered (damaged, too large, a bomb): the reason is recorded, never shown as a 500."""


def previewable(content_type: str) -> bool:
    """Whether render() knows this media type."""
    return (content_type in IMAGE_TYPES or content_type == "application/pdf" or content_type.startswith("text/")
            or content_type in TEXT_TYPES)


def _spool(chunks: Iterable[bytes], folder: Path) -> Path:
    path = folder / "source"
    total = 0
    with path.open("wb") as out:
        for chunk in chunks:
            total += len(chunk)
            if total > MAX_SOURCE:
                raise PreviewFailed(f"larger than {MAX_SOURCE // (1024 * 1024)} MiB: no preview")
            out.write(chunk)
    return path


def _png(image: Image.Image) -> bytes:
    image.thumbnail(SIZE)
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _image(path: Path) -> bytes:
    # our own ceiling below instead of Pillow's (which only warns between 1x and 2x its limit)
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as image:  # reads the header only: the size is known before anything is decoded
        if image.width * image.height > MAX_PIXELS:
            raise PreviewFailed(f"{image.width} x {image.height} pixels is more than we decode for a preview")
        image.seek(0)  # the first frame of an animation or a multi-page TIFF
        image.draft("RGB", SIZE)  # JPEG: decode at a reduced scale straight away
        return _png(image.copy())


def _pdf(path: Path) -> bytes:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        if len(pdf) == 0:
            raise PreviewFailed("the PDF has no pages")
        page = pdf[0]
        width, height = page.get_size()
        scale = min(SIZE[0] / max(width, 1), SIZE[1] / max(height, 1), 4.0)
        bitmap = page.render(scale=max(scale, 0.05))
        return _png(bitmap.to_pil())
    finally:
        pdf.close()


def _text(head: bytes) -> bytes:
    text = head.decode("utf-8", "replace")
    lines = [line[:40] for line in text.replace("\r\n", "\n").split("\n")[:TEXT_LINES]]
    page = Image.new("RGB", (SIZE[0], SIZE[1]), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=11)
    for row, line in enumerate(lines):
        draw.text((8, 6 + row * 13), line.expandtabs(4), fill=(30, 30, 30), font=font)
    return _png(page)


def render(content_type: str, chunks: Iterable[bytes]) -> bytes | None:
    """A PNG thumbnail of the bytes (None when the type has no renderer); PreviewFailed when they cannot be drawn."""
    if not previewable(content_type):
        return None
    try:
        if content_type.startswith("text/") or content_type in TEXT_TYPES:
            head = bytearray()
            for chunk in chunks:
                head.extend(chunk[:TEXT_BYTES - len(head)])
                if len(head) >= TEXT_BYTES:
                    break
            return _text(bytes(head))
        with tempfile.TemporaryDirectory(prefix="casestream-preview-") as folder:
            source = _spool(chunks, Path(folder))
            return _pdf(source) if content_type == "application/pdf" else _image(source)
    except PreviewFailed:
        raise
    except Exception as exc:  # whatever a decoder raises on hostile or damaged bytes: recorded, not fatal
        raise PreviewFailed(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
