"""Mask previews: PNG thumbnails made with Pillow, stored once per (file, size).

Label masks (a few distinct values: 0/1, class ids 0–255; modes 1, L, P with a grey
palette, I) would look black; they are drawn with the Okabe–Ito palette, which stays
distinct for colour-blind readers: 0 (background) black, class v the palette's
((v - 1) mod 7)-th colour. They are scaled with nearest-neighbour, so no class is
blended into a colour it does not have. Other images are scaled smoothly (16-bit grey
stretched to 8 bits).

Untrusted input: only a few formats are opened; the file's length and the image's
pixel count (read from its header, before any decoding) are bounded by
PREVIEW_MAX_BYTES and PREVIEW_MAX_PIXELS, so a decompression bomb is refused without
being decoded. JPEGs are decoded at reduced scale (`draft`, via `thumbnail`).

Cache: the PNG is stored in the `mask_previews` collection under "<file id>:<size>".
Files never change once stored (a new upload is a new file), so an entry never goes
stale; stored in the database, it serves every worker and host and survives worker
recycling, unlike a per-worker cache. A TTL index drops entries 30 days after they were
made, so sizes nobody asks for again do not stay. HTTP caching adds an ETag (the file's SHA-256 and
the size) so a browser's repeat request costs no PNG transfer.
"""
import io
from dataclasses import dataclass

from bson import Binary
from flask import current_app
from flask_babel import format_decimal
from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError

import db
from cache import writes
from errors import ApiError
from timeutil import utcnow

MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 16, 1024, 256
FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")
MAX_LABELS = 32
LABEL_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L")
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "F")
BACKGROUND = (0, 0, 0)
# Okabe & Ito (2008), "Color Universal Design", without its black (the background here).
OKABE_ITO = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
             (204, 121, 167))


def not_an_image():
    return ApiError(415, "not_an_image", _("This file is not an image that a preview can be made of "
                                           "(%(formats)s).", formats=", ".join(FORMATS)))


def broken_image():
    return ApiError(422, "broken_image", _("This image file is damaged; no preview can be made of it."))


def too_large(what):
    """`what`: a translated sentence saying how large it is."""
    return ApiError(422, "image_too_large", _("This image is too large to preview (%(what)s).", what=what))


def label_palette():
    """A 256-entry palette: 0 black, every other value an Okabe–Ito colour."""
    colours = [BACKGROUND] + [OKABE_ITO[(value - 1) % len(OKABE_ITO)] for value in range(1, 256)]
    return [channel for colour in colours for channel in colour]


def _label_values(im):
    """The distinct values of a label mask, or None when `im` is not one."""
    if im.mode not in LABEL_MODES:
        return None
    colors = _as_int(im).getcolors(MAX_LABELS)
    if colors is None:
        return None
    values = sorted(value for _count, value in colors)
    if values[-1] > 255:
        return None
    if im.mode == "P":
        palette = im.getpalette() or []
        if any(len(set(palette[3 * v:3 * v + 3])) > 1 for v in values):
            return None  # a colour palette already shows the classes
    return values


def _as_int(im):
    """16-bit modes as 32-bit integers (which every operation takes), values unchanged."""
    return im.convert("I") if im.mode.startswith("I;16") else im


def _colourise(im, size):
    labels = _as_int(im).convert("L") if im.mode in WIDE_MODES or im.mode == "1" else im.copy()
    if im.mode == "1":
        labels = labels.point(lambda v: 1 if v else 0)
    labels.thumbnail((size, size), resample=Image.Resampling.NEAREST)
    labels.putpalette(label_palette())
    return labels.convert("RGB")


def _scale(im, size):
    if im.mode in WIDE_MODES:  # 16-bit or float grey: stretch its range to 8 bits
        low, high = _as_int(im).getextrema()
        span = (high - low) or 1
        im = _as_int(im).convert("F").point(lambda v: (v - low) * 255.0 / span).convert("L")
    elif im.mode == "P":  # indexed colours (a mask with its own palette): no blends between them
        im.thumbnail((size, size), resample=Image.Resampling.NEAREST)
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert("RGBA" if im.mode.endswith("A") else "RGB")
    im.thumbnail((size, size), resample=Image.Resampling.LANCZOS, reducing_gap=2.0)
    return im


def render(data, size, max_pixels):
    """PNG bytes of a preview of image `data`, at most `size` pixels on its longer side."""
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise not_an_image() from None
    except Image.DecompressionBombError:
        raise too_large(_("more pixels than allowed")) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise broken_image() from None
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise too_large(_("%(width)s × %(height)s pixels; at most %(most)s are previewed",
                                  width=format_decimal(width), height=format_decimal(height),
                                  most=format_decimal(max_pixels)))
        try:
            if im.format == "JPEG":
                im.draft("RGB" if im.mode != "L" else "L", (size, size))
            values = _label_values(im)
            out = _colourise(im, size) if values is not None else _scale(im, size)
            buffer = io.BytesIO()
            out.save(buffer, "PNG")
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError):
            raise broken_image() from None
    return buffer.getvalue()


@dataclass(frozen=True)
class Preview:
    png: bytes
    cached: bool  # True when it was read from the cache (no image work done)


def etag(grid_out, size):
    """The preview's ETag: its file's content hash (or id) and the size."""
    return f"{(grid_out.metadata or {}).get('sha256') or grid_out._id}-{size}"


@writes  # writes only the preview cache, which holds no batch, mask or user data: no version bump
def preview(grid_out, size):
    """The preview of the opened mask file `grid_out` at `size`, from the cache or made and cached."""
    key = f"{grid_out._id}:{size}"
    found = db.mask_previews().find_one({"_id": key}, {"png": 1})
    if found is not None:
        return Preview(bytes(found["png"]), cached=True)
    max_bytes = current_app.config["PREVIEW_MAX_BYTES"]
    if grid_out.length > max_bytes:
        raise too_large(_("a %(size)s-byte file; at most %(most)s bytes are previewed",
                             size=format_decimal(grid_out.length), most=format_decimal(max_bytes)))
    png = render(grid_out.read(max_bytes + 1), size, current_app.config["PREVIEW_MAX_PIXELS"])
    db.mask_previews().replace_one({"_id": key}, {"_id": key, "file_id": grid_out._id, "size": size,
                                                  "png": Binary(png), "at": utcnow()}, upsert=True)
    return Preview(png, cached=False)
