"""Upload size limits over real HTTP: a file over the per-file limit (8 MB) and a request over MAX_CONTENT_LENGTH
are refused with 413 Payload Too Large naming the limit, on the upload page and the JSON API, and leave no file
behind; the OpenAPI document announces 413 for every operation that takes an upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.uploads import MAX_UPLOAD_BYTES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HU = {"hu_min": "-160", "hu_max": "240"}


def png_sized(size: int) -> bytes:
    """``size`` bytes that start like a PNG (the size check comes before any decoding)."""
    return PNG_SIGNATURE + b"\x00" * (size - len(PNG_SIGNATURE))


def uploaded_files(site) -> list[Path]:
    return sorted(p for p in (Path(site.data_dir) / "uploads").rglob("*") if p.is_file())


@pytest.fixture
def rita(site):
    client = site.client("rita")
    client.http.headers["X-CSRF-Token"] = client.get("/api/v1/me").json()["csrf_token"]
    return client


def post_everywhere(rita, data: bytes) -> dict[str, object]:
    """The same image to the upload page, the image search and the image session endpoints."""
    token = rita.csrf("/query/image")
    image = {"image": ("big.png", data, "image/png")}
    return {"page": rita.post("/query/image", data={"csrf_token": token, **HU}, files=image),
            "search": rita.post("/api/v1/search/image", data={**HU, "roi": '{"rectangle": [0, 0, 5, 5]}'},
                                files=image),
            "session": rita.post("/api/v1/sessions", data={**HU, "roi": '{"rectangle": [0, 0, 5, 5]}'},
                                 files=image)}


def test_a_file_over_the_per_file_limit_is_413_naming_the_limit_and_nothing_is_kept(site, rita):
    before = uploaded_files(site)
    answers = post_everywhere(rita, png_sized(MAX_UPLOAD_BYTES + 1))
    assert {name: r.status_code for name, r in answers.items()} == {"page": 413, "search": 413, "session": 413}
    assert "Payload Too Large" in answers["page"].text and "8 MB per uploaded file" in answers["page"].text
    for name in ("search", "session"):
        error = answers[name].json()["error"]
        assert (error["status"], error["title"]) == (413, "Payload Too Large")
        assert "larger than the limit of 8 MB per uploaded file" in error["message"]
    assert uploaded_files(site) == before


def test_a_file_at_the_limit_is_not_refused_for_its_size(site, rita):
    answers = post_everywhere(rita, png_sized(MAX_UPLOAD_BYTES))
    assert all(r.status_code == 400 for r in answers.values()), {n: r.status_code for n, r in answers.items()}
    assert all("limit" not in r.text for r in answers.values())  # refused as a broken PNG, not for its size


def test_a_request_over_max_content_length_is_413_naming_the_limit_and_nothing_is_kept(site, rita):
    before = uploaded_files(site)
    with site.settings(MAX_CONTENT_LENGTH=1024 * 1024):
        answers = post_everywhere(rita, png_sized(2 * 1024 * 1024))
        answers["job"] = rita.post("/api/v1/jobs", data={"kind": "ingest"},
                                   files={"archive": ("cohort.zip", b"PK" + b"\x00" * 2 * 1024 * 1024,
                                                      "application/zip")})
    assert {name: r.status_code for name, r in answers.items()} == {
        "page": 413, "search": 413, "session": 413, "job": 413}
    assert "1 MB for the whole request (MAX_CONTENT_LENGTH)" in answers["page"].text
    for name in ("search", "session", "job"):
        error = answers[name].json()["error"]
        assert (error["status"], error["title"]) == (413, "Payload Too Large")
        assert "1 MB for the whole request (MAX_CONTENT_LENGTH)" in error["message"]
    assert uploaded_files(site) == before


def test_the_openapi_document_announces_413_for_every_upload(anon):
    paths = anon.get("/api/v1/openapi.json").json()["paths"]
    uploads = [(path, method) for path, operations in paths.items() for method, operation in operations.items()
               if "multipart/form-data" in operation.get("requestBody", {}).get("content", {})]
    assert ("/search/image", "post") in uploads and ("/jobs", "post") in uploads
    assert {(p, m): "413" in paths[p][m]["responses"] for p, m in uploads} == {u: True for u in uploads}
