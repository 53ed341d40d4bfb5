"""Load one CT slice as Hounsfield units from DICOM, NIfTI, PNG or TIFF."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from semgraph.errors import InvalidInput
from semgraph.imaging._checks import (
    DEFAULT_MAX_SIZE,
    check_data_size,
    check_int,
    check_path,
    check_range,
    check_size,
)

_DICOM_EXTENSIONS = (".dcm", ".dicom", ".ima")
#: Most bytes a file may hold before its pixel data: a NIfTI data offset (``vox_offset``: the header and its
#: extensions, which are never read), or the inflated elements before the pixel data of a Deflated Explicit VR
#: Little Endian DICOM (its header is parsed from at most this much inflated data).
MAX_HEADER_BYTES = 16 << 20
#: Bytes inflated at a time from a deflated DICOM.
_INFLATE_CHUNK = 1 << 20
_PIXEL_TAGS = frozenset((0x7FE00008, 0x7FE00009, 0x7FE00010))  # Float, Double Float and (integer) Pixel Data
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_RASTER_MAXIMA = {"L": 255.0, "I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0}


@dataclass(frozen=True)
class LoadedImage:
    """One 2-D image in Hounsfield units.

    Attributes
    ----------
    hu : ndarray (M, N) of float64
        Pixel values in Hounsfield units; row 0 is the first stored row.
    spacing : (float, float)
        Pixel spacing ``(between rows, between columns)`` in millimetres.
    spacing_known : bool
        False when the file carries no spacing and ``spacing`` is the placeholder ``(1.0, 1.0)``.
    format : {'dicom', 'nifti', 'png', 'tiff'}
        Format detected from the file content.
    slice_index : int or None
        Frame (DICOM), slice (NIfTI) or page (TIFF) that was read; None for a single-slice file.
    modality : str or None
        The DICOM Modality (0008,0060), e.g. ``'CT'`` or ``'MR'``; None for other formats or when absent.
    """

    hu: np.ndarray
    spacing: tuple[float, float]
    spacing_known: bool
    format: str
    slice_index: int | None = None
    modality: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(M, N)`` of :attr:`hu`."""
        return self.hu.shape


def detect_format(path: Path) -> str:
    """Return 'dicom', 'nifti', 'png' or 'tiff' from the first bytes of ``path`` (extension as a fallback)."""
    with open(path, "rb") as fh:
        head = fh.read(352)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(352)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInput(f"{path.name}: a gzip file that cannot be decompressed ({exc}).") from exc
        return "nifti" if _is_nifti_header(head) else "unknown"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if _is_nifti_header(head):
        return "nifti"
    if path.suffix.lower() in _DICOM_EXTENSIONS:
        return "dicom"  # DICOM without the 128-byte preamble
    return "unknown"


def _is_nifti_header(head: bytes) -> bool:
    """True if ``head`` starts with a NIfTI-1 (348) or NIfTI-2 (540) ``sizeof_hdr`` and magic."""
    if len(head) < 348:
        return False
    for order in ("<", ">"):
        size = int(np.frombuffer(head[:4], dtype=f"{order}i4")[0])
        if size == 348 and head[344:347] in (b"n+1", b"ni1"):
            return True
        if size == 540 and head[4:7] in (b"n+2", b"ni2"):
            return True
    return False


def load_image(path, *, slice_index: int | None = None, hu_range=None, max_size: int = DEFAULT_MAX_SIZE) -> LoadedImage:
    """Load one CT slice as a float64 array of Hounsfield units plus its pixel spacing.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file, a single-file NIfTI-1/2 (``.nii`` or ``.nii.gz``), or an 8/16-bit grayscale PNG or TIFF.
        The format is detected from the file content, not its name.
    slice_index : int, optional
        Frame of a multi-frame DICOM, slice along the third voxel axis of a 3-D NIfTI, or page of a multi-page
        TIFF. Required for those (no slice is chosen silently); must be None or 0 for single-slice files.
    hu_range : (float, float), optional
        Required for PNG/TIFF, ignored (must be None) otherwise: the HU values that the dtype's smallest and
        largest values (0 and 255, or 0 and 65535) stand for.
    max_size : int, default 4096
        Largest accepted number of rows or columns; checked from the header before the pixels are decoded.
        The pixel or voxel data the header declares (DICOM: all frames; NIfTI: the volume) must also be at most
        :data:`~semgraph.imaging.MAX_IMAGE_BYTES` (1 GiB), checked before anything is inflated or decoded; only the
        chosen frame or slice is then decoded.

    Returns
    -------
    LoadedImage
        ``hu`` of shape (M, N), ``spacing`` in mm as (between rows, between columns).

    Raises
    ------
    InvalidInput
        Not an image, truncated file, no pixel data, colour image, missing/invalid ``slice_index`` or
        ``hu_range``, image over ``max_size``, declared data over ``MAX_IMAGE_BYTES``.
    NotFound
        ``path`` does not exist.

    Notes
    -----
    DICOM: ``HU = stored · RescaleSlope + RescaleIntercept`` (from the top level, else the shared or per-frame
    functional groups; slope 1 and intercept 0 when absent). NIfTI: ``scl_slope``/``scl_inter`` are applied, the
    array is not reoriented: rows follow voxel axis i and columns voxel axis j, spacing is ``(zoom_i, zoom_j)``.
    PNG/TIFF with ``hu_range = (lo, hi)`` and dtype maximum ``v_max``: ``HU = lo + v · (hi − lo) / v_max``; the
    spacing is unknown and reported as ``(1.0, 1.0)`` with ``spacing_known=False``.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> image = load_image(get_testdata_file("CT_small.dcm"))
    >>> image.hu.shape, image.hu.dtype.name
    ((128, 128), 'float64')
    """
    path = check_path(path)
    if slice_index is not None:
        slice_index = check_int(slice_index, "slice_index", minimum=0)
    max_size = check_int(max_size, "max_size", minimum=1)
    fmt = detect_format(path)
    if fmt == "unknown":
        raise InvalidInput(f"{path.name} is not a recognised image: expected DICOM, NIfTI (.nii/.nii.gz), PNG or TIFF.")
    if fmt in ("png", "tiff"):
        if hu_range is None:
            raise InvalidInput(
                f"{path.name} is a {fmt.upper()} file, which carries no Hounsfield units: pass hu_range=(lo, hi), "
                "the HU values of the darkest and brightest possible pixel (e.g. the display window it was saved with)."
            )
        return _load_raster(path, fmt, slice_index, check_range(hu_range, "hu_range"), max_size)
    if hu_range is not None:
        raise InvalidInput(f"hu_range applies to PNG/TIFF only; {path.name} is {fmt.upper()} and carries its own HU scaling.")
    if fmt == "dicom":
        return _load_dicom(path, slice_index, max_size)
    return _load_nifti(path, slice_index, max_size)


def _pick_slice(count: int, slice_index: int | None, what: str, name: str) -> int | None:
    """Check ``slice_index`` against ``count`` slices; return None for a single slice."""
    if count == 1:
        if slice_index not in (None, 0):
            raise InvalidInput(f"{name} has a single {what}; slice_index must be None or 0, got {slice_index}.")
        return None
    if slice_index is None:
        raise InvalidInput(f"{name} has {count} {what}s: pass slice_index in 0..{count - 1} to choose one.")
    if slice_index >= count:
        raise InvalidInput(f"slice_index {slice_index} is out of range: {name} has {count} {what}s (0..{count - 1}).")
    return slice_index


# --- DICOM ----------------------------------------------------------------------------------------------------


def _frame_group(ds, keyword: str, frame: int):
    """Return a functional-group macro item (shared, else per-frame) or None."""
    for groups, index in (("SharedFunctionalGroupsSequence", 0), ("PerFrameFunctionalGroupsSequence", frame)):
        seq = getattr(ds, groups, None)
        if seq and len(seq) > index:
            item = getattr(seq[index], keyword, None)
            if item:
                return item[0]
    return None


def _load_dicom(path: Path, slice_index: int | None, max_size: int) -> LoadedImage:
    with _open_dicom(path) as (ds, read_frame):
        frames = _checked_dicom_frames(ds, path, max_size)
        index = _pick_slice(frames, slice_index, "frame", path.name)
        pixels = read_frame(index=index)
    rows, cols = int(ds.Rows), int(ds.Columns)
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.shape != (rows, cols):
        raise InvalidInput(f"{path.name}: decoded pixels have shape {pixels.shape}, expected {(rows, cols)}.")
    frame = index or 0
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is None and intercept is None:
        item = _frame_group(ds, "PixelValueTransformationSequence", frame)
        if item is not None:
            slope, intercept = item.get("RescaleSlope"), item.get("RescaleIntercept")
    slope = 1.0 if slope is None else float(slope)
    intercept = 0.0 if intercept is None else float(intercept)
    spacing = ds.get("PixelSpacing")
    if spacing is None:
        item = _frame_group(ds, "PixelMeasuresSequence", frame)
        spacing = item.get("PixelSpacing") if item is not None else ds.get("ImagerPixelSpacing")
    known = spacing is not None and len(spacing) == 2 and all(float(v) > 0 for v in spacing)
    return LoadedImage(
        hu=pixels * slope + intercept,
        spacing=(float(spacing[0]), float(spacing[1])) if known else (1.0, 1.0),
        spacing_known=known,
        format="dicom",
        slice_index=index,
        modality=str(ds.get("Modality") or "").strip()[:16] or None,
    )


def dicom_pixel_bytes(ds, name: str = "the DICOM file") -> int:
    """Bytes of pixel data that the header ``ds`` declares: frames × rows × columns × samples per pixel × bytes per
    sample (:func:`pydicom.pixels.utils.get_expected_length`; no NumberOfFrames counts as one frame).

    Raises :class:`InvalidInput` (naming ``name``) when an Image Pixel element it needs is missing or invalid.
    """
    from pydicom.pixels.utils import get_expected_length

    try:
        return int(get_expected_length(ds))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"{name}: the DICOM header lacks an element that sizes its pixel data ({exc}).") from exc


def _no_pixel_data(ds, name: str) -> InvalidInput:
    """The error for a DICOM object ``ds`` (named ``name``) that is not an image."""
    kind = ds.get("Modality") or ds.get("SOPClassUID", "unknown")
    return InvalidInput(f"{name} has no pixel data (a DICOM {kind} object, not an image).")


def _checked_dicom_frames(ds, path: Path, max_size: int) -> int:
    """The number of frames of the grayscale image ``ds`` (a header), checked before any pixel is decoded.

    Rows and columns within ``max_size``, one sample per pixel, whole bytes per sample, and at most
    :data:`~semgraph.imaging.MAX_IMAGE_BYTES` of declared pixel data (:func:`dicom_pixel_bytes`); otherwise
    :class:`InvalidInput`.
    """
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows < 1 or cols < 1:
        raise InvalidInput(f"{path.name}: the DICOM header gives no valid Rows/Columns ({rows}x{cols}).")
    check_size((rows, cols), max_size)
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise InvalidInput(
            f"{path.name} is a colour image ({ds.get('PhotometricInterpretation', '?')}); a CT slice must be grayscale."
        )
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if bits < 8 or bits % 8:
        raise InvalidInput(f"{path.name}: BitsAllocated is {bits}; a CT slice has 8, 16, 32 or 64 bits per pixel.")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames < 1:
        raise InvalidInput(f"{path.name}: the DICOM header gives an invalid NumberOfFrames ({frames}).")
    check_data_size(dicom_pixel_bytes(ds, path.name),
                    f"{path.name} declares {frames} frame{'s' if frames > 1 else ''} of {rows}x{cols} pixels")
    return frames


@contextmanager
def _open_dicom(path: Path) -> Iterator[tuple[Any, Callable[..., np.ndarray]]]:
    """Read the header of a DICOM file; yield ``(dataset, read_frame)``.

    ``read_frame(index=i)`` decodes one frame (``index`` None: the only one) and may be called once, while the block is
    open; check the header first. A file in Deflated Explicit VR Little Endian is inflated in bounded chunks: at
    most :data:`MAX_HEADER_BYTES` to find its pixel data, then only up to the end of the frame asked for (see
    :func:`_read_deflated`; ``dataset`` then lacks the pixel data element). Any other transfer syntax (native or
    encapsulated) is read with :func:`pydicom.dcmread`, which holds no more than the file, and ``read_frame``
    decodes only the frame asked for. :class:`InvalidInput` for a file without pixel data.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import (  # what dcmread itself reads first
        _read_file_meta_info,
        read_preamble,
    )
    from pydicom.pixels import pixel_array

    force = path.suffix.lower() in _DICOM_EXTENSIONS
    with open(path, "rb") as fh:
        try:
            read_preamble(fh, force)
            deflated = _read_file_meta_info(fh).get("TransferSyntaxUID") == pydicom.uid.DeflatedExplicitVRLittleEndian
            if deflated:
                ds, read_frame = _read_deflated(fh, path.name)
            else:
                ds = pydicom.dcmread(path, force=force)
                if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
                    raise _no_pixel_data(ds, path.name)
                read_frame = partial(pixel_array, ds)
        except InvalidDicomError as exc:
            raise InvalidInput(f"{path.name} is not a valid DICOM file ({exc}).") from exc
        except InvalidInput:
            raise
        except Exception as exc:  # pydicom raises many types on corrupt headers
            raise InvalidInput(f"{path.name}: the DICOM header cannot be read; the file may be truncated ({exc}).") \
                from exc

        def decoded(*, index: int | None) -> np.ndarray:
            try:
                return read_frame(index=index)
            except InvalidInput:
                raise
            except Exception as exc:  # truncated pixel data, missing codec, bad group 0028 values
                raise InvalidInput(
                    f"{path.name}: the pixel data cannot be decoded; the file may be truncated or use a codec that "
                    f"is not installed ({exc})."
                ) from exc

        yield ds, decoded


class _Inflater:
    """A raw deflate stream read from ``fh``, inflated on demand: a call returns at most the bytes asked for, and
    inflates no more than :data:`_INFLATE_CHUNK` bytes at a time."""

    def __init__(self, fh: BinaryIO):
        self._fh, self._stream = fh, zlib.decompressobj(-zlib.MAX_WBITS)

    def read(self, size: int) -> bytes:
        """The next ``size`` inflated bytes; fewer only where the stream ends or the file is truncated."""
        out = bytearray()
        while len(out) < size and not self._stream.eof:
            data = self._stream.unconsumed_tail or self._fh.read(_INFLATE_CHUNK)
            if not data:
                break
            out += self._stream.decompress(data, min(size - len(out), _INFLATE_CHUNK))
        return bytes(out)

    @property
    def ended(self) -> bool:
        """Whether the deflate stream has ended."""
        return self._stream.eof

    def skip(self, size: int) -> None:
        """Inflate and drop the next ``size`` bytes, a chunk at a time."""
        while size > 0 and (piece := self.read(min(size, _INFLATE_CHUNK))):
            size -= len(piece)


def _read_deflated(fh: BinaryIO, name: str) -> tuple[Any, Callable[..., np.ndarray]]:
    """The header and a one-frame reader of the Deflated Explicit VR Little Endian dataset that starts at ``fh``.

    The header is parsed from at most :data:`MAX_HEADER_BYTES` of inflated data (pydicom's own
    :func:`~pydicom.dcmread` would inflate the whole file at once, whatever it declares). ``read_frame(index=i)``
    inflates on, dropping the frames before ``i``, and decodes frame ``i`` alone: memory holds the header and one
    frame, however many frames the file declares. Call it only once the header has been checked.
    """
    from pydicom.datadict import keyword_for_tag
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset
    from pydicom.pixels import as_pixel_options, get_decoder
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    inflater = _Inflater(fh)
    head = inflater.read(MAX_HEADER_BYTES)
    stream = DicomBytesIO(head)
    ds = read_dataset(stream, is_implicit_VR=False, is_little_endian=True,
                      stop_when=lambda tag, vr, length: tag in _PIXEL_TAGS)
    at = stream.tell()
    if len(head) - at < 12:  # no pixel data element in the inflated head
        if len(head) == MAX_HEADER_BYTES:
            raise InvalidInput(f"{name}: no pixel data in the first {MAX_HEADER_BYTES >> 20} MB of its inflated "
                               "dataset; its header is over that limit.")
        if not inflater.ended:
            raise InvalidInput(f"{name}: the deflated data ends before the pixel data; the file is truncated.")
        raise _no_pixel_data(ds, name)
    # the element stop_when stopped at: tag, VR, 2 reserved bytes, 32-bit length (PS3.5 7.1.2)
    group, element, vr, length = struct.unpack("<HH2s2xI", head[at:at + 12])
    if vr not in (b"OB", b"OW", b"OF", b"OD"):
        raise InvalidInput(f"{name}: its pixel data element has VR {vr!r}, not OB, OW, OF or OD.")
    keyword = keyword_for_tag(group << 16 | element)

    def read_frame(*, index: int | None) -> np.ndarray:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        size = dicom_pixel_bytes(ds, name) // frames
        if not size * frames <= length < 0xFFFFFFFF:
            raise InvalidInput(f"{name}: its pixel data element holds {length:,} bytes, not the {size * frames:,} "
                               "its header declares.")
        begin = at + 12 + (index or 0) * size
        data = head[begin:begin + size]
        inflater.skip(begin - len(head))
        data += inflater.read(size - len(data))
        if len(data) < size:
            raise InvalidInput(f"{name}: the deflated data ends inside frame {index or 0}; the file is truncated.")
        options = as_pixel_options(ds, number_of_frames=1, pixel_keyword=keyword)
        return get_decoder(DeflatedExplicitVRLittleEndian).as_array(data, **options)[0]

    return ds, read_frame


# --- NIfTI ----------------------------------------------------------------------------------------------------


@contextmanager
def open_nifti(path: Path, max_size: int) -> Iterator[tuple[Any, tuple[int, ...]]]:
    """Open a single-file NIfTI-1/2, gzip-compressed or not (whatever its name); yield ``(nibabel image, shape)``.

    Only the header is read here. It must declare a 2-D or 3-D volume (``shape``, trailing axes of length 1
    dropped) with rows and columns within ``max_size``, at most :data:`~semgraph.imaging.MAX_IMAGE_BYTES` of voxel
    data and a data offset within :data:`MAX_HEADER_BYTES`; otherwise :class:`InvalidInput`, before any voxel is
    decompressed.
    While the block is open, the image's ``dataobj`` reads from the file, decompressing it only up to the end of
    the voxels it is asked for: reading a slice never holds more than that slice in memory.
    """
    import nibabel
    from nibabel.arrayproxy import ArrayProxy

    with _open_plain_or_gzip(path) as fh:
        try:
            head = fh.read(540)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInput(f"{path.name}: a gzip file that cannot be decompressed ({exc}).") from exc
        header = _nifti_header(path, head)
        shape = _checked_nifti_shape(path, header, max_size)
        klass = nibabel.Nifti2Image if isinstance(header, nibabel.Nifti2Header) else nibabel.Nifti1Image
        yield klass(ArrayProxy(fh, header), None, header), shape


def _open_plain_or_gzip(path: Path):
    """``path`` opened for reading, through gzip when it starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _nifti_header(path: Path, head: bytes):
    """The NIfTI-1 or NIfTI-2 header at the start of ``head`` (its extensions are not parsed)."""
    import nibabel

    if not _is_nifti_header(head):
        raise InvalidInput(f"{path.name}: the NIfTI header cannot be read; the file may be truncated.")
    two = head[4:7] in (b"n+2", b"ni2")
    try:
        return nibabel.Nifti2Header(head[:540], check=True) if two else nibabel.Nifti1Header(head[:348], check=True)
    except Exception as exc:
        raise InvalidInput(f"{path.name}: the NIfTI header is invalid ({exc}).") from exc


def _checked_nifti_shape(path: Path, header, max_size: int) -> tuple[int, ...]:
    """The 2-D or 3-D shape ``header`` declares, checked against ``max_size`` and the NIfTI size limits."""
    declared = tuple(int(n) for n in header.get_data_shape())
    shape = declared
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        raise InvalidInput(f"{path.name} is a {len(declared)}-D NIfTI {declared}; only 2-D or 3-D volumes are "
                           "supported.")
    check_size(shape[:2], max_size)
    check_data_size(math.prod(shape) * header.get_data_dtype().itemsize,
                    f"{path.name} declares a volume of {'x'.join(map(str, shape))} voxels")
    if int(header.get_data_offset()) > MAX_HEADER_BYTES:
        raise InvalidInput(f"{path.name}: its voxel data starts at byte {int(header.get_data_offset()):,}, after "
                           f"header extensions over the limit of {MAX_HEADER_BYTES // 2**20} MB.")
    return shape


def nifti_slice(img, index: int | None, path: Path) -> np.ndarray:
    """Slice ``index`` (None: the only one of a 2-D image) of an image from :func:`open_nifti`, scaled, finite."""
    try:
        key = (slice(None), slice(None)) + ((index or 0,) + (0,) * (img.ndim - 3) if img.ndim > 2 else ())
        data = np.asarray(img.dataobj[key])
    except Exception as exc:
        raise InvalidInput(f"{path.name}: the NIfTI voxel data cannot be read; the file may be truncated "
                           f"({exc}).") from exc
    if not np.isfinite(data).all():
        raise InvalidInput(f"{path.name}: the selected slice contains NaN or infinite values.")
    return data


def _load_nifti(path: Path, slice_index: int | None, max_size: int) -> LoadedImage:
    with open_nifti(path, max_size) as (img, shape):
        index = _pick_slice(shape[2] if len(shape) == 3 else 1, slice_index, "slice", path.name)
        data = nifti_slice(img, index, path).astype(np.float64)
        zooms = img.header.get_zooms()
    known = len(zooms) >= 2 and all(float(z) > 0 for z in zooms[:2])
    return LoadedImage(
        hu=np.ascontiguousarray(data),
        spacing=(float(zooms[0]), float(zooms[1])) if known else (1.0, 1.0),
        spacing_known=known,
        format="nifti",
        slice_index=index,
    )


# --- PNG / TIFF -----------------------------------------------------------------------------------------------


def open_raster(path: Path, slice_index: int | None, max_size: int):
    """Open a PNG/TIFF with Pillow, select the page and decode it; return ``(pil_image, page)``."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:  # the header declares far more pixels than any CT slice has
        raise InvalidInput(f"{path.name} declares an image too large to open ({exc}).") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInput(f"{path.name} cannot be opened as an image ({exc}).") from exc
    check_size((im.size[1], im.size[0]), max_size)
    page = _pick_slice(getattr(im, "n_frames", 1), slice_index, "page", path.name)
    try:
        if page:
            im.seek(page)
        im.load()
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{path.name}: the pixel data cannot be decoded; the file may be truncated ({exc}).") from exc
    return im, page


def _load_raster(path: Path, fmt: str, slice_index, hu_range: tuple[float, float], max_size: int) -> LoadedImage:
    im, page = open_raster(path, slice_index, max_size)
    if im.mode not in _RASTER_MAXIMA:
        raise InvalidInput(
            f"{path.name} has Pillow mode {im.mode!r}; a CT slice must be saved as 8-bit ('L') or 16-bit ('I;16') "
            "grayscale."
        )
    lo, hi = hu_range
    values = np.asarray(im, dtype=np.float64)
    return LoadedImage(
        hu=lo + values * ((hi - lo) / _RASTER_MAXIMA[im.mode]),
        spacing=(1.0, 1.0),
        spacing_known=False,
        format=fmt,
        slice_index=page,
    )
