"""Mask previews (GET /api/masks/<id>/preview): PNG thumbnails made with Pillow, label masks
colourised, cached per file and size, hostile files refused without being decoded."""
import io
import struct
import zlib

import pytest
from PIL import Image

from checks import assert_error
from factories import png_bytes, store_mask


def preview(client, headers, file_id, size=None, **kwargs):
    query = "" if size is None else f"?size={size}"
    return client.get(f"/api/masks/{file_id}/preview{query}", headers=headers, **kwargs)


def decoded(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.get_data()))
    assert image.format == "PNG"
    return image.convert("RGB")


def colours(image):
    return {colour for _count, colour in image.getcolors(1 << 16)}


def luminance(rgb):
    r, g, b = rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.fixture
def opens(monkeypatch):
    """Counts the images Pillow opens and decodes in this process."""
    counts = {"open": 0, "load": 0}
    real_open, real_load = Image.open, Image.Image.load

    def counting_open(*args, **kwargs):
        counts["open"] += 1
        return real_open(*args, **kwargs)

    def counting_load(self, *args, **kwargs):
        counts["load"] += 1
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    monkeypatch.setattr(Image.Image, "load", counting_load)
    return counts


def label_mask(size=(400, 300), classes=(0, 1), mode="L"):
    """A label mask: vertical stripes, one per class value."""
    image = Image.new(mode, size, 0)
    stripe = size[0] // len(classes)
    for index, value in enumerate(classes):
        image.paste(value, (index * stripe, 0, (index + 1) * stripe, size[1]))
    return image


# --------------------------------------------------------------------------- what comes out


def test_a_photo_like_image_is_scaled_to_a_png(client, database, lead):
    gradient = Image.linear_gradient("L").resize((600, 400)).convert("RGB")
    file_id = store_mask(database, "batch_0001/scan.jpg", png_bytes(gradient, "JPEG", quality=90))

    image = decoded(preview(client, lead, file_id, 128))

    assert max(image.size) == 128 and image.size == (128, 85)
    assert len(colours(image)) > 32  # smoothly scaled, not posterised


def test_the_default_size_is_256(client, database, lead):
    file_id = store_mask(database, "big.png", png_bytes(Image.new("RGB", (1000, 500), (10, 200, 30))))

    assert decoded(preview(client, lead, file_id)).size == (256, 128)


def test_a_smaller_image_is_not_enlarged(client, database, lead):
    file_id = store_mask(database, "small.png", png_bytes(Image.new("RGB", (40, 20), (10, 200, 30))))

    assert decoded(preview(client, lead, file_id, 512)).size == (40, 20)


def test_a_binary_label_mask_is_colourised_visibly(client, database, lead):
    raw = label_mask(classes=(0, 1))  # 0/1 in mode L: black on black as it is
    assert max(colours(raw.convert("RGB")), key=luminance) == (1, 1, 1)
    file_id = store_mask(database, "batch_0001/mask_0001.png", png_bytes(raw))

    found = colours(decoded(preview(client, lead, file_id, 200)))

    assert len(found) == 2, found  # nearest-neighbour: no class blended into a colour it does not have
    background, foreground = sorted(found, key=luminance)
    assert background == (0, 0, 0)
    assert luminance(foreground) > 100, foreground


@pytest.mark.parametrize("mode", ["L", "I;16", "P"])
def test_class_ids_get_distinct_colours(client, database, lead, mode):
    classes = (0, 1, 2, 3, 4, 5)
    raw = label_mask(size=(600, 100), classes=classes, mode="I" if mode == "I;16" else mode)
    if mode == "P":
        raw.putpalette([v for i in range(256) for v in (i, i, i)])  # a grey palette: still class ids
    file_id = store_mask(database, f"labels_{mode}.png", png_bytes(raw.convert(mode) if mode == "I;16" else raw))

    found = colours(decoded(preview(client, lead, file_id, 300)))

    assert len(found) == len(classes), found
    assert all(luminance(colour) > 40 for colour in found - {(0, 0, 0)})


def test_class_ids_above_the_palette_wrap_around_it(client, database, lead):
    """Okabe–Ito has seven colours besides black: class 8 is drawn like class 1."""
    file_id = store_mask(database, "wrap.png", png_bytes(label_mask(classes=(0, 1, 8, 200))))

    found = colours(decoded(preview(client, lead, file_id, 100)))

    assert (0, 0, 0) in found and len(found) == 3


def test_a_mask_with_a_colour_palette_keeps_its_colours(client, database, lead):
    raw = label_mask(classes=(0, 1, 2), mode="P")
    raw.putpalette([0, 0, 0, 255, 0, 255, 0, 255, 255] + [0] * (253 * 3))
    file_id = store_mask(database, "palette.png", png_bytes(raw))

    assert colours(decoded(preview(client, lead, file_id, 90))) == {(0, 0, 0), (255, 0, 255), (0, 255, 255)}


def test_a_sixteen_bit_grey_image_is_stretched_not_black(client, database, lead):
    raw = Image.linear_gradient("L").resize((300, 300)).convert("I").point(lambda v: v * 4)  # 0..1020 of 65535
    file_id = store_mask(database, "depth.png", png_bytes(raw.convert("I;16")))

    image = decoded(preview(client, lead, file_id, 100))

    assert max(luminance(c) for c in colours(image)) > 200


# --------------------------------------------------------------------------- the cache


def test_a_second_request_does_no_image_work(client, database, lead, opens):
    file_id = store_mask(database, "m.png", png_bytes(label_mask()))

    first = preview(client, lead, file_id, 64)
    assert first.status_code == 200 and opens["open"] == 1
    second = preview(client, lead, file_id, 64)

    assert second.status_code == 200 and second.get_data() == first.get_data()
    assert opens == {"open": 1, "load": opens["load"]} and opens["load"] >= 1
    loads = opens["load"]
    assert preview(client, lead, file_id, 64).status_code == 200
    assert (opens["open"], opens["load"]) == (1, loads)
    assert database.mask_previews.count_documents({}) == 1
    # Another size is another preview.
    smaller = preview(client, lead, file_id, 32)
    assert opens["open"] == 2 and database.mask_previews.count_documents({}) == 2
    assert decoded(smaller).size == (32, 24)


def test_the_cache_serves_every_worker(mongo_uri, db_name, client, database, lead, opens):
    """Stored in the database: another app instance (a worker, a host) makes nothing again."""
    from helpers import build_app

    file_id = store_mask(database, "m.png", png_bytes(label_mask()))
    assert preview(client, lead, file_id).status_code == 200

    other = build_app(mongo_uri, db_name).test_client()
    assert preview(other, lead, file_id).status_code == 200
    assert opens["open"] == 1


def test_the_etag_answers_304_without_a_body(client, database, lead, opens):
    content = png_bytes(label_mask())
    file_id = store_mask(database, "m.png", content)

    first = preview(client, lead, file_id, 64)
    etag = first.headers["ETag"]
    conditional = {**lead, "If-None-Match": etag}
    again = preview(client, conditional, file_id, 64)

    assert again.status_code == 304 and again.get_data() == b""
    assert preview(client, conditional, file_id, 65).status_code == 200
    assert "private" in first.headers["Cache-Control"]


# --------------------------------------------------------------------------- refusals


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb(width, height):
    """A tiny PNG whose header claims width × height pixels (1-bit grey)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def test_a_file_that_is_not_an_image_is_415(client, database, lead):
    file_id = store_mask(database, "notes.png", b"these are notes, not pixels\n" * 10)

    assert_error(preview(client, lead, file_id), 415, "not_an_image")
    assert database.mask_previews.count_documents({}) == 0


def test_a_damaged_image_is_422(client, database, lead):
    content = png_bytes(Image.linear_gradient("L").resize((300, 300)))
    file_id = store_mask(database, "cut.png", content[: len(content) // 2])

    assert_error(preview(client, lead, file_id), 422, "broken_image")
    assert database.mask_previews.count_documents({}) == 0


@pytest.mark.parametrize("width,height", [(8000, 8000), (100_000, 100_000)])
def test_a_decompression_bomb_is_refused_without_decoding(client, database, lead, opens, width, height):
    """Above PREVIEW_MAX_PIXELS (or Pillow's own bomb limit) the header alone decides: nothing is decoded."""
    file_id = store_mask(database, "bomb.png", bomb(width, height))

    body = assert_error(preview(client, lead, file_id), 422, "image_too_large")

    assert opens["load"] == 0
    assert "too large" in body["message"]


def test_a_file_longer_than_the_limit_is_not_read(app, client, database, lead, opens):
    app.config["PREVIEW_MAX_BYTES"] = 1000
    file_id = store_mask(database, "large.png", png_bytes(Image.effect_noise((200, 200), 64)))

    assert_error(preview(client, lead, file_id), 422, "image_too_large")
    assert opens["open"] == 0


@pytest.mark.parametrize("size", ["15", "1025", "0", "big", "1.5"])
def test_the_size_is_16_to_1024(client, database, lead, size):
    file_id = store_mask(database, "m.png", png_bytes(label_mask()))

    assert_error(preview(client, lead, file_id, size), 400)


def test_previews_follow_the_download_rule(client, database, seg, other_seg):
    """Like a download, any logged-in user may preview a mask; nobody else."""
    file_id = store_mask(database, "batch_0001/m.png", png_bytes(label_mask()), batch_id="batch_0001")

    assert preview(client, other_seg, file_id).status_code == 200
    assert_error(client.get(f"/api/masks/{file_id}/preview"), 401, "unauthorized")
    assert_error(preview(client, seg, "0123456789abcdef01234567"), 404, "not_found")
