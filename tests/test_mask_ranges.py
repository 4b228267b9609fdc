"""Mask downloads answer a single byte range with 206 (they advertise Accept-Ranges)."""
import os

import pytest

from test_masks import CHUNK_SIZE, upload


@pytest.fixture
def stored(client, lead):
    content = os.urandom(CHUNK_SIZE * 2 + 1000)  # three GridFS chunks
    body = upload(client, lead, content, "big.png").get_json()
    return f"/api/masks/{body['id']}", content


def test_a_whole_download_advertises_ranges(client, lead, stored):
    url, content = stored
    response = client.get(url, headers=lead)
    assert response.status_code == 200
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.data == content and int(response.headers["Content-Length"]) == len(content)


@pytest.mark.parametrize("spec,start,end", [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, None),
    ("bytes=-500", None, None),
    (f"bytes={CHUNK_SIZE - 10}-{CHUNK_SIZE + 10}", CHUNK_SIZE - 10, CHUNK_SIZE + 10),  # across chunks
])
def test_a_single_range_is_answered_with_206(client, lead, stored, spec, start, end):
    url, content = stored
    response = client.get(url, headers={**lead, "Range": spec})
    if start is None:
        expected, first = content[-500:], len(content) - 500
    else:
        expected, first = content[start:(end + 1 if end is not None else None)], start
    assert response.status_code == 206, response.status_code
    assert response.data == expected
    assert int(response.headers["Content-Length"]) == len(expected)
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(content)}"


def test_an_unsatisfiable_range_is_416(client, lead, stored):
    url, content = stored
    response = client.get(url, headers={**lead, "Range": f"bytes={len(content) + 10}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(content)}"


def test_a_range_with_a_stale_if_range_gets_the_whole_file(client, lead, stored):
    url, content = stored
    response = client.get(url, headers={**lead, "Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert response.status_code == 200 and response.data == content
