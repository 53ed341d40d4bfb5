"""A gzip-compressed NIfTI zip bomb (a few MB expanding to gigabytes) uploaded as a query image over real HTTP, on
the upload page and the JSON API: 400 from its header, quickly and in little memory, with no file kept."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from niftibomb import header_bytes, write_bomb

EXPANDED = 6 << 30  # a file of about 6 MB, under the 8 MB upload limit
MAX_SECONDS = 10.0  # for all four uploads; decompressing one bomb alone takes longer
MAX_PEAK = 128 << 20  # bytes allocated in the test process, server threads included


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("upload-bombs")
    return {"over the size limit": write_bomb(folder / "wide.nii.gz", header_bytes((30000, 30000)),
                                              EXPANDED).read_bytes(),
            "GiB of data, over the limit": write_bomb(folder / "deep.nii.gz", header_bytes((2048, 2048, 4096)),
                                                      EXPANDED).read_bytes()}


def uploaded_files(site) -> list[Path]:
    return sorted(p for p in (Path(site.data_dir) / "uploads").rglob("*") if p.is_file())


def test_a_nifti_zip_bomb_upload_is_refused_quickly_and_nothing_is_kept(site, bombs):
    rita = site.client("rita")
    rita.http.headers["X-CSRF-Token"] = rita.get("/api/v1/me").json()["csrf_token"]
    token = rita.csrf("/query/image")
    before, quads = uploaded_files(site), site.store.count()
    answers = {}
    tracemalloc.start()
    started = time.perf_counter()
    for message, data in bombs.items():
        image = {"image": ("scan.nii.gz", data, "application/gzip")}
        answers[message] = (
            rita.post("/query/image", data={"csrf_token": token, "slice_index": "0"}, files=image),
            rita.post("/api/v1/search/image", data={"slice_index": "0", "roi": '{"rectangle": [0, 0, 20, 20]}'},
                      files=image))
    seconds, peak = time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"4 zip-bomb uploads: {[r.status_code for pair in answers.values() for r in pair]} in {seconds:.2f} s, "
          f"peak {peak / 2**20:.1f} MiB")
    for message, (page, api) in answers.items():
        assert (page.status_code, api.status_code) == (400, 400), (page.text[:300], api.text[:300])
        assert message in page.text and message in api.json()["error"]["message"]
    assert seconds < MAX_SECONDS and peak < MAX_PEAK
    assert uploaded_files(site) == before and site.store.count() == quads
