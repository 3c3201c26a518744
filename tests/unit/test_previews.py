"""Thumbnails: text drawn, images scaled, a PDF's first page; hostile or damaged bytes fail with a reason, bounded."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from adapters import previews
from adapters.previews import PreviewFailed, render


def _size(png: bytes | None) -> tuple[int, int]:
    assert png is not None and png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as image:
        return image.size


def _encoded(image: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def test_an_image_is_scaled_into_the_thumbnail_box_keeping_its_shape() -> None:
    photo = _encoded(Image.new("RGB", (1600, 900), "teal"), "JPEG")
    assert _size(render("image/jpeg", [photo[:1000], photo[1000:]])) == (256, 144)


def test_a_pdf_shows_its_first_page() -> None:
    first, second = Image.new("RGB", (600, 800), "white"), Image.new("RGB", (800, 600), "black")
    out = io.BytesIO()
    first.save(out, "PDF", save_all=True, append_images=[second])
    png = render("application/pdf", [out.getvalue()])
    assert _size(png) == (192, 256)  # portrait: the first page, not the landscape second
    assert png is not None
    with Image.open(io.BytesIO(png)) as thumb:
        assert thumb.convert("L").getpixel((96, 128)) > 200  # white, as the first page is


def test_text_is_drawn_from_its_first_lines_only() -> None:
    huge = (b"line of text\n" * 100_000)  # 1.3 MB: only the head is read
    assert _size(render("text/plain", [huge])) == (256, 256)


def test_types_without_a_renderer_have_no_preview() -> None:
    assert render("application/zip", [b"PK\x03\x04"]) is None


@pytest.mark.parametrize(("kind", "data"), [
    ("application/pdf", b"%PDF-1.7\n" + os.urandom(2_000)),
    ("image/png", b"\x89PNG\r\n\x1a\n" + os.urandom(500)),
])
def test_damaged_files_fail_with_a_reason(kind: str, data: bytes) -> None:
    with pytest.raises(PreviewFailed) as failed:
        render(kind, [data])
    assert str(failed.value)


@pytest.mark.parametrize("side", [8_000, 12_000])  # 64 M pixels (Pillow alone would only warn) and 144 M
def test_a_decompression_bomb_is_refused_before_it_is_decoded(side: int) -> None:
    bomb = _encoded(Image.new("1", (side, side)), "PNG")
    assert len(bomb) < 1_000_000
    with pytest.raises(PreviewFailed, match="more than we decode"):
        render("image/png", [bomb])


def test_a_file_over_the_source_limit_is_not_read_to_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(previews, "MAX_SOURCE", 10_000)
    read = []

    def chunks() -> object:
        for _ in range(1_000):
            read.append(1)
            yield b"\0" * 4_096

    with pytest.raises(PreviewFailed, match="no preview"):
        render("image/png", chunks())  # type: ignore[arg-type]
    assert len(read) < 10
