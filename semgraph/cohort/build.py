"""Write a synthetic cohort to disk: images, masks and the manifest, one case at a time."""

from __future__ import annotations

from pathlib import Path

from semgraph.cohort.manifest import ManifestWriter, case_row
from semgraph.cohort.profiles import split_counts
from semgraph.cohort.stream import iter_cases
from semgraph.cohort.writers import (
    FORMATS,
    check_format,
    write_dicom,
    write_mask,
    write_nifti,
)
from semgraph.errors import InvalidInput
from semgraph.progress import track

DEFAULT_OUT_DIR = Path("semgraph-data") / "cohort"
SHARD = 1000  # cases per sub-folder, so 100k cases do not land in one directory


def generate(
    n: int = 72,
    seed: int = 0,
    out_dir: str | Path | None = None,
    *,
    image_format: str = "dicom",
    size: int = 256,
    spacing: float = 0.7,
    reader_noise: float = 0.05,
    progress: bool = True,
) -> Path:
    """Generate ``n`` cases and write them under ``out_dir``; return the path of ``manifest.json``.

    Layout: ``images/<shard>/<case_id>.dcm`` (or ``.nii``), ``masks/<shard>/<case_id>.png`` (0/255), and
    ``manifest.json`` + ``manifest.csv`` with paths relative to ``out_dir``. Cases are streamed from
    :func:`iter_cases`, written and dropped, so memory does not grow with ``n``. Progress goes to standard error
    (:func:`semgraph.progress.track`).

    Parameters
    ----------
    n, seed, size, spacing, reader_noise
        As for :func:`iter_cases`.
    out_dir : str or Path, optional
        Output folder (created if needed; existing files of the same names are overwritten).
        Default ``./semgraph-data/cohort``.
    image_format : {'dicom', 'nifti'}
        File format of the images.
    progress : bool
        Show a progress bar.

    Raises
    ------
    InvalidInput
        For a bad argument (nothing is written), or when ``out_dir`` exists and is not a folder.
    """
    fmt = check_format(image_format)
    cases = iter_cases(n, seed, size=size, spacing=spacing, reader_noise=reader_noise)  # validates first
    out = Path(DEFAULT_OUT_DIR if out_dir is None else out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"out_dir {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    params = {
        "n": int(n), "seed": int(seed), "image_format": fmt, "size": int(size), "pixel_spacing_mm": float(spacing),
        "reader_noise": float(reader_noise), "counts": split_counts(int(n)),
    }
    writer_fn = write_dicom if fmt == "dicom" else write_nifti
    made: set[str] = set()
    with ManifestWriter(out, params) as manifest:
        for case in track(cases, total=int(n), desc="cohort", unit="case", enabled=progress):
            shard = f"{case.index // SHARD:04d}"
            if shard not in made:
                (out / "images" / shard).mkdir(parents=True, exist_ok=True)
                (out / "masks" / shard).mkdir(parents=True, exist_ok=True)
                made.add(shard)
            image_rel = f"images/{shard}/{case.case_id}{FORMATS[fmt]}"
            mask_rel = f"masks/{shard}/{case.case_id}.png"
            writer_fn(out / image_rel, case)
            write_mask(out / mask_rel, case.mask)
            manifest.add(case_row(case, image_rel, mask_rel, fmt))
    return manifest.json_path
