"""Tests of semgraph.imaging on real files shipped by pydicom and nibabel, plus every bad-input case."""

from __future__ import annotations

import json
import os
import shutil

import nibabel
import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nibabel.testing import data_path
from PIL import Image
from pydicom.data import get_testdata_file

from semgraph.errors import InvalidInput, NotFound
from semgraph.imaging import (
    check_image,
    check_mask,
    load_image,
    mask_from_file,
    polygon_mask,
    rectangle_mask,
    roi_mask,
)


def pydicom_file(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not available offline")
    return path


# --- DICOM ----------------------------------------------------------------------------------------------------


def test_dicom_ct_small_hu_and_spacing():
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    image = load_image(pydicom_file("CT_small.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert image.format == "dicom" and image.hu.dtype == np.float64 and image.hu.shape == (128, 128)
    np.testing.assert_array_equal(image.hu, expected)
    assert image.spacing == pytest.approx((0.661468, 0.661468)) and image.spacing_known
    assert image.slice_index is None


def test_dicom_multiframe_requires_and_uses_frame_index():
    path = pydicom_file("rtdose.dcm")
    with pytest.raises(InvalidInput, match=r"15 frames: pass slice_index in 0\.\.14"):
        load_image(path)
    frames = pydicom.dcmread(path).pixel_array
    image = load_image(path, slice_index=7)
    np.testing.assert_array_equal(image.hu, frames[7].astype(np.float64))
    assert image.slice_index == 7 and image.spacing == (10.0, 10.0)
    with pytest.raises(InvalidInput, match="out of range"):
        load_image(path, slice_index=15)


def test_dicom_truncated_pixel_data():
    with pytest.raises(InvalidInput, match="truncated"):
        load_image(pydicom_file("MR_truncated.dcm"))


def test_dicom_truncated_file(tmp_path):
    raw = open(pydicom_file("CT_small.dcm"), "rb").read()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InvalidInput, match="truncated"):
        load_image(cut)


def test_dicom_without_pixel_data():
    with pytest.raises(InvalidInput, match="no pixel data"):
        load_image(pydicom_file("rtplan.dcm"))


def test_dicom_colour_rejected():
    with pytest.raises(InvalidInput, match="colour"):
        load_image(pydicom_file("SC_rgb_small_odd.dcm"))


def test_dicom_single_frame_rejects_other_index():
    with pytest.raises(InvalidInput, match="single frame"):
        load_image(pydicom_file("CT_small.dcm"), slice_index=2)


def test_dicom_rejects_hu_range():
    with pytest.raises(InvalidInput, match="PNG/TIFF only"):
        load_image(pydicom_file("CT_small.dcm"), hu_range=(0, 1))


def test_format_detected_from_content_not_name(tmp_path):
    renamed = tmp_path / "slice.bin"
    shutil.copy(pydicom_file("CT_small.dcm"), renamed)
    assert load_image(renamed).format == "dicom"


def test_size_limit_checked_before_decoding():
    with pytest.raises(InvalidInput, match="size limit of 64x64"):
        load_image(pydicom_file("CT_small.dcm"), max_size=64)


def test_dicom_deflated_single_frame():
    path = pydicom_file("image_dfl.dcm")
    image = load_image(path)
    np.testing.assert_array_equal(image.hu, pydicom.dcmread(path).pixel_array.astype(np.float64))
    assert image.shape == (512, 512) and image.slice_index is None


def deflated_ct(path, frames: np.ndarray, intercept: float = -1024.0):
    """``frames`` (F, M, N) of int16 written as a signed 12-bit CT in Deflated Explicit VR Little Endian."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, generate_uid(), "CT"
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.RescaleSlope, ds.RescaleIntercept, ds.PixelSpacing = 1, intercept, [0.5, 0.75]
    ds.PixelData = frames.astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_deflated_multiframe_decodes_only_the_chosen_frame(tmp_path):
    # 40 frames of 512 KiB: the first 16 MiB inflated for the header end inside frame 31, the rest is inflated on
    ramp = (np.indices((512, 512)).sum(axis=0) % 13).astype(np.int16)
    frames = np.arange(40, dtype=np.int16)[:, None, None] * 50 - 1000 + ramp
    path = deflated_ct(tmp_path / "volume.dcm", frames)
    for index in (0, 31, 39):
        image = load_image(path, slice_index=index)
        np.testing.assert_array_equal(image.hu, frames[index] - 1024.0)
        assert image.slice_index == index and image.spacing == (0.5, 0.75)
    with pytest.raises(InvalidInput, match=r"40 frames: pass slice_index in 0\.\.39"):
        load_image(path)
    with pytest.raises(InvalidInput, match="out of range"):
        load_image(path, slice_index=40)


def test_dicom_deflated_truncated(tmp_path):
    path = deflated_ct(tmp_path / "volume.dcm", np.arange(3 * 64 * 64, dtype=np.int16).reshape(3, 64, 64))
    raw = path.read_bytes()
    for cut in (len(raw) // 2, 400):  # inside the pixel data, inside the header
        (tmp_path / "cut.dcm").write_bytes(raw[:cut])
        with pytest.raises(InvalidInput, match="truncated"):
            load_image(tmp_path / "cut.dcm", slice_index=2)


def test_dicom_encapsulated_multiframe_frame():
    path = pydicom_file("rtdose_rle.dcm")
    image = load_image(path, slice_index=7)
    np.testing.assert_array_equal(image.hu, pydicom.dcmread(path).pixel_array[7].astype(np.float64))


# --- NIfTI ----------------------------------------------------------------------------------------------------


def test_nifti_3d_slice():
    path = os.path.join(data_path, "anatomical.nii")
    volume = nibabel.load(path).get_fdata()
    image = load_image(path, slice_index=12)
    assert image.format == "nifti" and image.hu.shape == volume.shape[:2]
    np.testing.assert_array_equal(image.hu, volume[:, :, 12])
    assert image.spacing == (2.0, 2.0)
    with pytest.raises(InvalidInput, match="25 slices"):
        load_image(path)


def test_nifti_gz_and_anisotropic_spacing():
    path = os.path.join(data_path, "standard.nii.gz")
    image = load_image(path, slice_index=3)
    np.testing.assert_array_equal(image.hu, nibabel.load(path).get_fdata()[:, :, 3])
    assert image.spacing == (1.0, 3.0)


def test_nifti_2d(tmp_path):
    data = np.arange(20 * 30, dtype=np.int16).reshape(20, 30)
    img = nibabel.Nifti1Image(data, np.diag([0.7, 0.8, 1.0, 1.0]))
    img.header.set_slope_inter(2.0, -1024.0)
    path = tmp_path / "slice.nii"
    nibabel.save(img, path)
    image = load_image(path)
    np.testing.assert_allclose(image.hu, data * 2.0 - 1024.0)
    assert image.spacing == pytest.approx((0.7, 0.8)) and image.slice_index is None


def test_nifti_4d_rejected():
    with pytest.raises(InvalidInput, match="4-D"):
        load_image(os.path.join(data_path, "example4d.nii.gz"), slice_index=0)


def test_nifti_truncated(tmp_path):
    raw = open(os.path.join(data_path, "anatomical.nii"), "rb").read()
    cut = tmp_path / "cut.nii"
    cut.write_bytes(raw[:1000])
    with pytest.raises(InvalidInput, match="truncated"):
        load_image(cut, slice_index=0)


# --- PNG / TIFF -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "tiff"])
@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535)])
def test_raster_linear_hu_mapping(tmp_path, fmt, dtype, top):
    values = np.linspace(0, top, 24 * 16).astype(dtype).reshape(24, 16)
    path = tmp_path / f"slice.{fmt}"
    Image.fromarray(values).save(path)
    image = load_image(path, hu_range=(-1000, 1000))
    np.testing.assert_allclose(image.hu, -1000 + values * (2000 / top))
    assert image.hu[0, 0] == -1000 and image.hu[-1, -1] == 1000
    assert image.format == fmt and not image.spacing_known


def test_raster_requires_hu_range(tmp_path):
    path = tmp_path / "slice.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    with pytest.raises(InvalidInput, match="pass hu_range"):
        load_image(path)


@pytest.mark.parametrize("bad", [(5, 5), (1,), "wide", (0, float("nan")), (True, 3)])
def test_raster_invalid_hu_range(tmp_path, bad):
    path = tmp_path / "slice.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    with pytest.raises(InvalidInput, match="hu_range"):
        load_image(path, hu_range=bad)


def test_raster_colour_rejected(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    with pytest.raises(InvalidInput, match="grayscale"):
        load_image(path, hu_range=(0, 100))


def test_raster_truncated(tmp_path):
    path = tmp_path / "full.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InvalidInput, match="truncated"):
        load_image(cut, hu_range=(0, 100))


def test_raster_size_limit(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 300), np.uint8)).save(path)
    with pytest.raises(InvalidInput, match="40x300 pixels, over the size limit"):
        load_image(path, hu_range=(0, 1), max_size=256)


# --- not an image, wrong types --------------------------------------------------------------------------------


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image at all")
    with pytest.raises(InvalidInput, match="not a recognised image"):
        load_image(path)
    with pytest.raises(InvalidInput, match="not a recognised image"):
        load_image(os.path.join(data_path, "README.rst"))


def test_missing_file(tmp_path):
    with pytest.raises(NotFound, match="no such file"):
        load_image(tmp_path / "absent.dcm")


@pytest.mark.parametrize("bad", [None, 3, b"x.dcm", ["a.dcm"]])
def test_path_wrong_type(bad):
    with pytest.raises(InvalidInput, match="file path"):
        load_image(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True, -1])
def test_slice_index_wrong_type(bad):
    with pytest.raises(InvalidInput, match="slice_index"):
        load_image(pydicom_file("rtdose.dcm"), slice_index=bad)


# --- ROI ------------------------------------------------------------------------------------------------------


def test_rectangle_is_half_open_slice():
    mask = roi_mask((64, 80), rectangle=(10, 20, 40, 50))
    expected = np.zeros((64, 80), bool)
    expected[20:50, 10:40] = True
    np.testing.assert_array_equal(mask, expected)


@given(
    x0=st.integers(0, 40), y0=st.integers(0, 30), w=st.integers(1, 20), h=st.integers(1, 20),
)
@settings(max_examples=50, deadline=None)
def test_polygon_of_rectangle_corners_equals_rectangle(x0, y0, w, h):
    corners = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    np.testing.assert_array_equal(polygon_mask(corners, (50, 60)), rectangle_mask((x0, y0, x0 + w, y0 + h), (50, 60)))
    np.testing.assert_array_equal(polygon_mask(corners[::-1], (50, 60)), polygon_mask(corners, (50, 60)))


def test_polygon_triangle_matches_point_in_polygon():
    tri = [(5.0, 5.0), (55.0, 12.5), (20.0, 45.0)]
    mask = polygon_mask(tri, (50, 60))
    yy, xx = np.mgrid[0:50, 0:60] + 0.5
    (ax, ay), (bx, by), (cx, cy) = tri

    def side(px, py, qx, qy):
        return (qx - px) * (yy - py) - (qy - py) * (xx - px)

    d1, d2, d3 = side(ax, ay, bx, by), side(bx, by, cx, cy), side(cx, cy, ax, ay)
    inside = ((d1 > 0) & (d2 > 0) & (d3 > 0)) | ((d1 < 0) & (d2 < 0) & (d3 < 0))
    boundary = np.minimum.reduce([abs(d1), abs(d2), abs(d3)]) < 1e-9
    np.testing.assert_array_equal(mask[~boundary], inside[~boundary])


def test_polygon_from_json_text_and_file(tmp_path):
    points = [[4, 4], [30, 4], [30, 30], [4, 30]]
    expected = rectangle_mask((4, 4, 30, 30), (40, 40))
    np.testing.assert_array_equal(roi_mask((40, 40), polygon=json.dumps(points)), expected)
    path = tmp_path / "roi.json"
    path.write_text(json.dumps({"points": points}))
    np.testing.assert_array_equal(roi_mask((40, 40), polygon=str(path)), expected)
    np.testing.assert_array_equal(roi_mask((40, 40), polygon=path), expected)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("[[1, 2], [3", "not valid JSON"),
        ('{"pts": []}', '"points"'),
        ([(1, 2), (3, 4)], "at least 3 points"),
        ([(1, 2), (3, 4), (5,)], "pair"),
        ([(1, 2), (3, "a"), (5, 6)], "finite numbers"),
        ([(1, 2), (3, float("inf")), (5, 6)], "finite numbers"),
        (42, "list of"),
    ],
)
def test_polygon_malformed(bad, message):
    with pytest.raises(InvalidInput, match=message):
        roi_mask((40, 40), polygon=bad)


def test_roi_outside_image():
    with pytest.raises(InvalidInput, match="outside the image"):
        roi_mask((40, 40), polygon=[(1, 1), (45, 1), (20, 30)])
    with pytest.raises(InvalidInput, match="outside the image"):
        roi_mask((40, 40), rectangle=(30, 0, 60, 20))
    with pytest.raises(InvalidInput, match="outside the image"):
        roi_mask((40, 40), rectangle=(-1, 0, 20, 20))


def test_roi_empty():
    with pytest.raises(InvalidInput, match="empty"):
        roi_mask((40, 40), mask=np.zeros((40, 40), bool))
    with pytest.raises(InvalidInput, match="empty"):
        roi_mask((40, 40), rectangle=(5, 5, 5, 20))
    with pytest.raises(InvalidInput, match="empty"):  # a degenerate polygon covers no pixel centre
        roi_mask((40, 40), polygon=[(1, 1), (20, 1), (30, 1)])


def test_roi_smaller_than_patch():
    with pytest.raises(InvalidInput, match=r"11x30 pixels .* smaller than one 12x12 patch"):
        roi_mask((40, 40), rectangle=(5, 5, 35, 16))
    assert roi_mask((40, 40), rectangle=(5, 5, 35, 16), min_size=8).sum() == 330


def test_roi_mismatched_shape():
    with pytest.raises(InvalidInput, match="must match"):
        roi_mask((40, 40), mask=np.ones((40, 41), bool))


def test_roi_exactly_one_spec():
    with pytest.raises(InvalidInput, match="exactly one"):
        roi_mask((40, 40))
    with pytest.raises(InvalidInput, match="exactly one"):
        roi_mask((40, 40), rectangle=(0, 0, 20, 20), polygon=[(0, 0), (20, 0), (0, 20)])


@pytest.mark.parametrize("bad", [np.full((40, 40), 2), np.ones((40, 40)) * 0.5, [[True]]])
def test_roi_mask_wrong_values_or_type(bad):
    with pytest.raises(InvalidInput):
        roi_mask((40, 40), mask=bad if isinstance(bad, np.ndarray) else bad)


def test_rectangle_wrong_types():
    with pytest.raises(InvalidInput, match="four integers"):
        roi_mask((40, 40), rectangle=(1, 2, 3))
    with pytest.raises(InvalidInput, match="integer"):
        roi_mask((40, 40), rectangle=(1.5, 2, 30, 30))


def test_mask_png(tmp_path):
    data = np.zeros((30, 40), np.uint8)
    data[5:25, 8:30] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(data).save(path)
    np.testing.assert_array_equal(roi_mask((30, 40), mask=path), data > 0)
    with pytest.raises(InvalidInput, match="must match"):
        mask_from_file(path, (40, 30))


def test_mask_nifti_3d_default_is_largest_slice(tmp_path):
    vol = np.zeros((32, 32, 5), np.uint8)
    vol[4:20, 4:20, 1] = 1
    vol[2:30, 2:30, 3] = 1  # largest lesion area
    vol[10:24, 10:24, 4] = 1
    path = tmp_path / "mask.nii.gz"
    nibabel.save(nibabel.Nifti1Image(vol, np.eye(4)), path)
    np.testing.assert_array_equal(roi_mask((32, 32), mask=path), vol[:, :, 3] > 0)
    np.testing.assert_array_equal(roi_mask((32, 32), mask=path, slice_index=1), vol[:, :, 1] > 0)
    with pytest.raises(InvalidInput, match="out of range"):
        roi_mask((32, 32), mask=path, slice_index=9)


def test_mask_from_real_nifti_volume():
    """nibabel's anatomical.nii thresholded as a mask: the default slice is the one with the most voxels."""
    path = os.path.join(data_path, "anatomical.nii")
    volume = nibabel.load(path).get_fdata()
    mask = mask_from_file(path, volume.shape[:2])
    best = int(np.argmax((volume != 0).sum(axis=(0, 1))))
    np.testing.assert_array_equal(mask, volume[:, :, best] != 0)


def test_mask_file_not_a_mask(tmp_path):
    path = tmp_path / "mask.txt"
    path.write_text("1 0 1")
    with pytest.raises(InvalidInput, match="not a mask file"):
        roi_mask((4, 4), mask=path)


def test_slice_index_needs_mask_file():
    with pytest.raises(InvalidInput, match="only to a mask file"):
        roi_mask((40, 40), rectangle=(0, 0, 20, 20), slice_index=1)


def test_roi_on_real_ct_with_loaded_image():
    image = load_image(pydicom_file("CT_small.dcm"))
    mask = roi_mask(image.shape, polygon=[(30, 30), (90, 35), (80, 95), (35, 85)])
    assert mask.shape == image.hu.shape and 2500 < mask.sum() < 4000


# --- shared validators ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, message",
    [
        ([[1.0, 2.0]], "numpy array"),
        (np.zeros(5), "2-D"),
        (np.zeros((3, 3), complex), "real numbers"),
        (np.zeros((3, 3), bool), "real numbers"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.zeros((0, 4)), "empty"),
        (np.zeros((5000, 2)), "size limit"),
    ],
)
def test_check_image(bad, message):
    with pytest.raises(InvalidInput, match=message):
        check_image(bad)


def test_check_mask_accepts_zero_one_integers():
    m = np.zeros((20, 20), np.uint8)
    m[2:18, 2:18] = 1
    assert check_mask(m, (20, 20)).dtype == bool
