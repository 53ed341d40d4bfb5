"""Gzip-compressed NIfTI files that expand to gigabytes (zip bombs): refused from their header, quickly and in
little memory, by the image and the mask loaders; and a valid header followed by gigabytes of extra data is read
only as far as the slice asked for.

The bombs come from tests/niftibomb.py: a header, then gzip members of zeros.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from niftibomb import header_bytes, write_bomb

from semgraph.errors import InvalidInput
from semgraph.imaging import load_image, mask_from_file

EXPANDED = 2 << 30  # what the zeros of a bomb expand to
MAX_SECONDS = 5.0  # a header check takes milliseconds
MAX_PEAK = 64 << 20  # bytes of Python/numpy memory while loading


def measured(call: Callable[[], object]) -> tuple[object, float, int]:
    """(result or raised exception, seconds, peak bytes allocated) of ``call()``."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - the caller checks which
        result = exc
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, elapsed, peak


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {"30000x30000": write_bomb(folder / "wide.nii.gz", header_bytes((30000, 30000)), EXPANDED),
            "512x512x8192": write_bomb(folder / "deep.nii.gz", header_bytes((512, 512, 8192)), EXPANDED)}


def test_the_bombs_are_small_files_that_expand_to_gigabytes(bombs):
    assert all(path.stat().st_size < 4 << 20 for path in bombs.values())  # well under the web upload limit
    with gzip.open(bombs["30000x30000"], "rb") as fh:
        fh.seek(EXPANDED)  # decompresses (and discards) 2 GiB of zeros
        assert fh.tell() == EXPANDED and fh.read(1) != b""  # plus the header before them


@pytest.mark.parametrize("name, message", [("30000x30000", "over the size limit"),
                                           ("512x512x8192", "GiB of data, over the limit")])
def test_a_bomb_is_refused_from_its_header_quickly_and_in_little_memory(bombs, name, message):
    for load in (lambda: load_image(bombs[name], slice_index=0), lambda: mask_from_file(bombs[name], (512, 512))):
        result, seconds, peak = measured(load)
        print(f"{name}: {type(result).__name__} in {seconds:.3f} s, peak {peak / 2**20:.1f} MiB")
        assert isinstance(result, InvalidInput), result
        assert message in str(result)
        assert seconds < MAX_SECONDS and peak < MAX_PEAK


def test_a_valid_volume_followed_by_gigabytes_is_read_only_up_to_the_slice(tmp_path):
    volume = np.random.default_rng(0).integers(-1000, 1000, size=(256, 256, 8), dtype=np.int16)
    head = header_bytes(volume.shape)
    path = write_bomb(tmp_path / "volume.nii.gz", head + volume.tobytes(order="F"), EXPANDED)
    image, seconds, peak = measured(lambda: load_image(path, slice_index=5))
    print(f"slice 5 of a volume followed by 2 GiB: {seconds:.3f} s, peak {peak / 2**20:.1f} MiB")
    assert not isinstance(image, Exception), image
    np.testing.assert_array_equal(image.hu, volume[:, :, 5])
    assert seconds < MAX_SECONDS and peak < MAX_PEAK


def test_a_mask_volume_followed_by_gigabytes_is_read_slice_by_slice(tmp_path):
    mask = np.zeros((128, 128, 6), dtype=np.uint8)
    mask[10:40, 10:40, 1] = 1
    mask[20:90, 20:90, 4] = 1  # the largest area
    path = write_bomb(tmp_path / "mask.nii.gz", header_bytes(mask.shape, np.uint8) + mask.tobytes(order="F"),
                      EXPANDED)
    found, seconds, peak = measured(lambda: mask_from_file(path, (128, 128)))
    assert not isinstance(found, Exception), found
    np.testing.assert_array_equal(found, mask[:, :, 4] > 0)
    assert seconds < MAX_SECONDS and peak < MAX_PEAK


def test_a_volume_shorter_than_its_header_says_is_truncated(tmp_path):
    path = tmp_path / "short.nii.gz"
    path.write_bytes(gzip.compress(header_bytes((64, 64, 4)) + bytes(64 * 64 * 2)))  # one slice of four
    assert load_image(path, slice_index=0).hu.shape == (64, 64)
    with pytest.raises(InvalidInput, match="truncated"):
        load_image(path, slice_index=3)
