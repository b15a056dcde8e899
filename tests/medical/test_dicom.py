"""DICOM input: values as a viewing station shows them (rescale, window, inversion, colour), the
header's subgroups, the size and channel rules, and every bad file as one message naming it.
Files are written with pydicom in the test, or are pydicom's own bundled examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from medical.dicoms import write_dicom
from stillroom.errors import DataError
from stillroom_medical.dicom import DicomSettings, age_group, apply_window, is_dicom, read_dicom
from stillroom_medical.imagefiles import Preprocessing, read_image

RAMP = np.arange(64, dtype=np.uint16).reshape(8, 8) * 10  # stored values 0..630
WINDOW = {"RescaleSlope": 2, "RescaleIntercept": -100, "WindowCenter": 300, "WindowWidth": 401}


def _by_hand(stored: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 LINEAR window on the rescaled values, to [0, 1]."""
    x = stored.astype(float) * 2 - 100
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0, 1)


def test_rescale_then_the_files_window(tmp_path: Path) -> None:
    values, meta = read_dicom(write_dicom(tmp_path / "a.dcm", RAMP, header=WINDOW), DicomSettings())
    assert values.dtype == np.float32 and values.shape == (8, 8)
    assert np.allclose(values, _by_hand(RAMP, 300, 401), atol=1e-6)
    assert meta == {"modality": "CR", "sex": "F", "age_group": "40-59", "site": "Site A", "manufacturer": "Acme Imaging"}


def test_configured_window_min_max_and_monochrome1(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "a.dcm", RAMP, header=WINDOW)
    fixed, _ = read_dicom(path, DicomSettings(window=(500.0, 1001.0)))
    assert np.allclose(fixed, _by_hand(RAMP, 500, 1001), atol=1e-6)
    minmax, _ = read_dicom(path, DicomSettings(window="minmax"))
    assert minmax.min() == 0.0 and minmax.max() == 1.0 and np.allclose(minmax.ravel(), np.arange(64) / 63, atol=1e-6)
    inverted, _ = read_dicom(write_dicom(tmp_path / "b.dcm", RAMP, photometric="MONOCHROME1", header=WINDOW), DicomSettings())
    assert np.allclose(inverted, 1 - _by_hand(RAMP, 300, 401), atol=1e-6)  # white is low in MONOCHROME1


def test_voi_functions_by_hand() -> None:
    x = np.array([0.0, 50.0, 100.0])
    assert np.allclose(apply_window(x, 50, 100, "LINEAR_EXACT"), [0.0, 0.5, 1.0])
    assert np.allclose(apply_window(x, 50, 100, "SIGMOID"), 1 / (1 + np.exp(-4 * (x - 50) / 100)))
    assert np.allclose(apply_window(x, 50, 101), [0.005, 0.505, 1.0])  # (x - 49.5) / 100 + 0.5


def test_rgb_files_and_channels(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
    path = write_dicom(tmp_path / "c.dcm", rgb, modality="XC")
    values, _ = read_dicom(path, DicomSettings())
    assert values.shape == (10, 10, 3) and np.allclose(values, rgb / 255.0, atol=1e-6)
    colour, _ = read_image(path, Preprocessing(None, channels=3))  # no size given: the file's own
    assert colour.shape == (3, 10, 10) and np.allclose(colour, np.transpose(rgb, (2, 0, 1)) / 255.0, atol=1e-6)
    grey, _ = read_image(path, Preprocessing(None, channels=1))  # colour into a grey model: luminance
    assert grey.shape == (1, 10, 10) and np.allclose(grey[0], values @ np.array([0.299, 0.587, 0.114]), atol=1e-6)
    wide = write_dicom(tmp_path / "d.dcm", np.zeros((10, 12), np.uint16))
    assert read_image(wide, Preprocessing(16, channels=3))[0].shape == (3, 16, 16)  # grey into a colour model


def test_size_policy_and_resize(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "a.dcm", RAMP, header=WINDOW)
    up, _ = read_image(path, Preprocessing(16))
    assert up.shape == (1, 16, 16) and 0 <= up.min() and up.max() <= 1
    with pytest.raises(DataError, match=r"a.dcm is 8 x 8 pixels, smaller than the model's 16 x 16 \(size policy 'no_upscale'\)"):
        read_image(path, Preprocessing(16, size_policy="no_upscale"), "a.dcm")
    with pytest.raises(DataError, match="size policy 'exact' needs 4 x 4"):
        read_image(path, Preprocessing(4, size_policy="exact"))
    down, _ = read_image(path, Preprocessing(4, size_policy="no_upscale"))
    assert down.shape == (1, 4, 4)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_dicom(p, RAMP, pixel_data=False), "has no pixel data"),
        (
            lambda p: write_dicom(p, np.zeros((3, 8, 8), np.uint16), header={"NumberOfFrames": 3}),
            "holds 3 frames; one image per file",
        ),
        (lambda p: write_dicom(p, RAMP, modality="CT"), "modality CT, but this model takes CR, DX"),
        (lambda p: p.write_bytes(write_dicom(p, RAMP).read_bytes()[:-40]), "cannot be decoded|is not readable"),
        (lambda p: write_dicom(p, RAMP, photometric="PALETTE COLOR"), "PALETTE COLOR is not supported"),
    ],
    ids=["no-pixel-data", "multi-frame", "wrong-modality", "truncated", "palette"],
)
def test_bad_dicom_files_name_themselves(tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "scan.dcm"
    make(path)
    with pytest.raises(DataError, match=message) as caught:
        read_dicom(path, DicomSettings(modalities=("CR", "DX")), "scan.dcm")
    assert "scan.dcm" in str(caught.value) and "\n" not in str(caught.value)


def test_pydicoms_bundled_examples(tmp_path: Path) -> None:
    """Real files shipped in the pydicom wheel: a CT slice (Hounsfield units through the rescale,
    no window in the file: min-max), an MR with a window, an RGB ultrasound, a multi-frame dose
    grid and a plan without pixels."""
    ct, meta = read_dicom(Path(get_testdata_file("CT_small.dcm")), DicomSettings(window=(40.0, 400.0)))
    assert ct.shape == (128, 128) and 0 < ct.mean() < 1 and meta["site"] == "JFK IMAGING CENTER" and meta["age_group"] == "0-17"
    mr, meta = read_dicom(Path(get_testdata_file("MR_small.dcm")), DicomSettings())
    assert mr.shape == (64, 64) and mr.max() <= 1 and meta["manufacturer"] == "TOSHIBA_MEC" and meta["age_group"] == "unknown"
    us, _ = read_image(Path(get_testdata_file("examples_rgb_color.dcm")), Preprocessing(32, channels=3))
    assert us.shape == (3, 32, 32)
    with pytest.raises(DataError, match="holds 15 frames"):
        read_dicom(Path(get_testdata_file("rtdose.dcm")), DicomSettings())
    with pytest.raises(DataError, match="has no pixel data"):
        read_dicom(Path(get_testdata_file("rtplan.dcm")), DicomSettings())


def test_dicom_files_are_found_without_a_suffix(tmp_path: Path) -> None:
    assert is_dicom(write_dicom(tmp_path / "IM0001", RAMP))
    (tmp_path / "notes.txt").write_text("not an image")
    assert not is_dicom(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    ("age", "group"), [("045Y", "40-59"), ("006M", "0-17"), ("080Y", "80+"), ("", "unknown"), ("4OY", "unknown")]
)
def test_age_groups(age: str, group: str) -> None:
    assert age_group(age) == group
