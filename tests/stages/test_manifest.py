"""Manifest: a good folder scans; every kind of damage gets one clear error naming the files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from carmask.demo.dataset import generate
from carmask.stages.manifest import DataError, build_manifest, write_manifest


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    generate(folder, n_train_cars=2, n_test_cars=1, views=3, width=96, height=64, seed=3)
    return folder


@pytest.fixture
def data(pristine, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(pristine, folder)
    return folder


def first(folder, sub, pattern="*"):
    return sorted((folder / sub).glob(pattern))[0]


def error_of(folder, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        build_manifest(folder, **kwargs)
    return str(err.value)


def test_good_folder(data):
    train, test = build_manifest(data)
    assert len(train) == 6 and len(test) == 3
    assert list(train.columns) == ["img", "car", "view", "image_path", "mask_path", "width", "height", "image_sha", "mask_sha"]
    assert (train["width"] == 96).all() and (train["height"] == 64).all()
    assert train["view"].tolist() == [1, 2, 3, 1, 2, 3]
    sample = pd.read_csv(data / "sample_submission.csv")
    assert test["img"].tolist() == sample["img"].tolist()


def test_manifests_identify_each_files_content(data):
    # A corrected mask or a replaced photo must change the manifest's bytes,
    # or Snakemake (which reruns on a changed checksum of a small input)
    # would skip every job after a manifest rewritten by an interrupted run.
    import hashlib
    import os

    train, test = build_manifest(data)
    for column in ("image", "mask"):
        for path, sha in zip(train[f"{column}_path"], train[f"{column}_sha"]):
            assert sha == hashlib.blake2b(Path(path).read_bytes(), digest_size=8).hexdigest()
    stats = [os.stat(p) for p in test["image_path"]]
    assert test["image_bytes"].tolist() == [st.st_size for st in stats]
    assert test["image_mtime_ns"].tolist() == [st.st_mtime_ns for st in stats]
    assert list(test.columns) == ["img", "car", "view", "image_path", "width", "height", "image_bytes", "image_mtime_ns"]

    mask = Path(train["mask_path"][0])
    fixed = bytearray(mask.read_bytes())
    fixed[-2] ^= 1  # one byte of the image data: same size, same name
    mask.write_bytes(bytes(fixed))
    photo = Path(test["image_path"][0])
    st = photo.stat()
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # a replaced photo of the same size
    train2, test2 = build_manifest(data)
    assert train2["mask_sha"].tolist()[1:] == train["mask_sha"].tolist()[1:]
    assert train2["mask_sha"][0] != train["mask_sha"][0] and train2["image_sha"].equals(train["image_sha"])
    assert test2["image_mtime_ns"][0] == test["image_mtime_ns"][0] + 1
    assert test2.drop(columns="image_mtime_ns").equals(test.drop(columns="image_mtime_ns"))


def test_test_manifest_follows_sample_submission_order(data):
    sample = pd.read_csv(data / "sample_submission.csv")
    sample.iloc[::-1].to_csv(data / "sample_submission.csv", index=False)
    _, test = build_manifest(data)
    assert test["img"].tolist() == sample["img"].tolist()[::-1]


def test_ignores_os_junk(data):
    for name in (".DS_Store", "Thumbs.db", "._0000_01.jpg"):
        (data / "train" / name).write_bytes(b"junk")
        (data / "test" / name).write_bytes(b"junk")
    build_manifest(data)


def test_missing_mask_and_orphan_mask(data):
    mask = first(data, "train_masks")
    mask.rename(data / "train_masks" / "0123456789ab_01_mask.gif")
    msg = error_of(data)
    image = mask.name.replace("_mask.gif", ".jpg")
    assert f"train images without a mask (1):\n    train/{image}" in msg
    assert "masks without a train image (1):\n    train_masks/0123456789ab_01_mask.gif" in msg


def test_lists_all_offenders_at_once(data):
    masks = sorted((data / "train_masks").glob("*.gif"))[:3]
    for m in masks:
        m.unlink()
    msg = error_of(data)
    assert "train images without a mask (3)" in msg
    for m in masks:
        assert m.name.replace("_mask.gif", ".jpg") in msg


def test_truncated_jpeg(data):
    path = first(data, "train", "*.jpg")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    msg = error_of(data)
    assert "corrupt images (1)" in msg and f"train/{path.name}" in msg and "truncated" in msg


def test_corrupt_gif(data):
    path = first(data, "train_masks")
    path.write_bytes(b"GIF89a" + b"\x00" * 20)
    msg = error_of(data)
    assert "corrupt masks (1)" in msg and f"train_masks/{path.name}" in msg


def test_mask_size_differs(data):
    path = first(data, "train_masks")
    img = Image.open(path)
    img.resize((50, 40)).save(path)
    msg = error_of(data)
    assert f"masks whose size differs from their image (1):\n    train_masks/{path.name}: 50x40, image 96x64" in msg


def test_mask_with_more_than_two_values(data):
    path = first(data, "train_masks")
    arr = np.zeros((64, 96), np.uint8)
    arr[:, 30:] = 1
    arr[:, 60:] = 2
    img = Image.fromarray(arr, mode="L").convert("P")
    img.save(path)
    msg = error_of(data)
    assert f"masks with more than two values (a mask must be binary) (1):\n    train_masks/{path.name}: 3 values" in msg


def test_bad_names_fail_or_skip(data, caplog):
    shutil.copy(first(data, "train", "*.jpg"), data / "train" / "IMG_0001.jpg")
    msg = error_of(data)
    assert "names not of the form" in msg and "train/IMG_0001.jpg" in msg and "on_bad_name: skip" in msg
    train, _ = build_manifest(data, on_bad_name="skip")
    assert "IMG_0001.jpg" not in set(train["img"])
    assert "skipping 1 files in train/" in caplog.text


def test_duplicate_ids(data):
    src = first(data, "test", "*.jpg")
    shutil.copy(src, data / "train" / src.name)
    shutil.copy(first(data, "train_masks"), data / "train_masks" / src.name.replace(".jpg", "_mask.gif"))
    assert f"duplicate ids: in both train/ and test/ (1):\n    {src.name}" in error_of(data)


def test_duplicate_ids_differing_in_case(data):
    src = first(data, "test", "*.jpg")
    shutil.copy(src, data / "test" / src.name.upper())
    msg = error_of(data, on_bad_name="skip")
    assert "duplicate ids differing only in case" in msg and src.name.upper() in msg


def test_missing_and_empty_folders(data):
    shutil.rmtree(data / "test")
    for f in (data / "train_masks").iterdir():
        f.unlink()
    msg = error_of(data)
    assert f"missing folders (1):\n    {data / 'test'}" in msg
    assert f"empty folders (1):\n    {data / 'train_masks'}" in msg
    assert "does not exist" in error_of(data / "nowhere")


def test_test_set_differs_from_sample_submission(data):
    gone = first(data, "test", "*.jpg")
    gone.unlink()
    extra = data / "test" / "ffffffffffff_01.jpg"
    shutil.copy(first(data, "test", "*.jpg"), extra)
    msg = error_of(data)
    assert "test images listed in sample_submission.csv but missing from test/" in msg
    assert f"manifest.partial_test: true to run on the photos present) (1):\n    test/{gone.name}" in msg
    assert "test images not listed in sample_submission.csv (1):\n    test/ffffffffffff_01.jpg" in msg


def test_partial_test_set_keeps_sample_order(data):
    sample = pd.read_csv(data / "sample_submission.csv")
    gone = data / "test" / sample["img"][1]
    gone.unlink()
    _, test = build_manifest(data, partial_test=True)
    assert test["img"].tolist() == [sample["img"][0], sample["img"][2]]


def test_write_manifest_one_side_at_a_time(data, tmp_path):
    write_manifest(data, "train", str(tmp_path / "m/train.parquet"))
    write_manifest(data, "test", str(tmp_path / "m/test.parquet"))
    train, test = build_manifest(data)
    assert pd.read_parquet(tmp_path / "m/train.parquet").equals(train)
    assert pd.read_parquet(tmp_path / "m/test.parquet").equals(test)
    assert not list((tmp_path / "m").glob(".tmp-*"))


def test_each_side_checks_only_its_own_files(data):
    # A broken test photo stops the test side and not the train side, and the
    # reverse: the workflow builds them in separate jobs.
    first(data, "test", "*.jpg").write_bytes(b"not a jpeg")
    train, test = build_manifest(data, sides=["train"])
    assert len(train) == 6 and test is None
    with pytest.raises(DataError, match="corrupt images"):
        build_manifest(data, sides=["test"])
    first(data, "train_masks").unlink()
    with pytest.raises(DataError, match="train images without a mask"):
        build_manifest(data, sides=["train"])


def test_a_clash_between_sides_is_found_from_either_side(data):
    src = first(data, "test", "*.jpg")
    shutil.copy(src, data / "train" / src.name)
    shutil.copy(first(data, "train_masks"), data / "train_masks" / src.name.replace(".jpg", "_mask.gif"))
    for side in ("train", "test"):
        with pytest.raises(DataError, match="duplicate ids: in both train/ and test/"):
            build_manifest(data, sides=[side])


def test_the_train_side_job_checks_test_photos_but_not_test_completeness(data, tmp_path):
    # No training may start on a folder whose test photos are broken; whether
    # the test set is complete is the test side's setting (partial_test), so
    # that flipping it does not retrain.
    sample = pd.read_csv(data / "sample_submission.csv")
    (data / "test" / sample["img"][0]).unlink()
    write_manifest(data, "train", str(tmp_path / "train.parquet"))
    with pytest.raises(DataError, match="missing from test/"):
        write_manifest(data, "test", str(tmp_path / "test.parquet"))
    write_manifest(data, "test", str(tmp_path / "test.parquet"), partial_test=True)
    first(data, "test", "*.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match="corrupt images"):
        write_manifest(data, "train", str(tmp_path / "train2.parquet"))
    assert not (tmp_path / "train2.parquet").exists()
