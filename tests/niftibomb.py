"""Gzip-compressed NIfTI zip bombs for the imaging and web upload tests (importable as ``niftibomb``).

A bomb is a NIfTI header declaring a huge volume, followed by gzip members of zeros (a gzip file may hold several
members, read one after the other): 64 KiB of compressed data per 64 MiB of zeros, so a few megabytes of file
expand to gigabytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel
import numpy as np

CHUNK = 64 << 20  # bytes of zeros per gzip member


def header_bytes(shape: tuple[int, ...], dtype=np.int16) -> bytes:
    """A NIfTI-1 header (348 bytes + the 4-byte extension flag) declaring ``shape`` voxels of ``dtype``."""
    header = nibabel.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_data_offset(352)
    return header.binaryblock + b"\0" * 4


def write_bomb(path: Path, head: bytes, expanded: int) -> Path:
    """``head`` as one gzip member, then members of zeros expanding to ``expanded`` bytes (a multiple of 64 MiB)."""
    zeros = gzip.compress(bytes(CHUNK), compresslevel=9)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(head))
        for _ in range(expanded // CHUNK):
            fh.write(zeros)
    return path
