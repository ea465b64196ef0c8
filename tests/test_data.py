"""Data: npz sources, class-balanced subsets, clear errors, deterministic augmented batches."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_npz_dataset

from midas import config
from midas.data import (
    BatchLoader,
    ImageArrays,
    Normalizer,
    balanced_prefix,
    cutout,
    load_npz,
    load_split,
    random_crop_flip,
)
from midas.errors import DataError


def _npz(path: Path, n: int, start: int = 0, size: int = 8, classes: int = 4, **extra: np.ndarray) -> Path:
    x = np.zeros((n, size, size, 3), dtype=np.uint8)
    x[:, 0, 0, 0] = np.arange(start, start + n) % 256  # identifies the image
    y = (np.arange(start, start + n) % classes).astype(np.int64)
    np.savez(path, **{"x": x, "y": y, **extra})
    return path


def _cfg(train: str, test: str | None = None, *extra: str) -> dict:
    sets = ["data.source=npz", f"data.train={train}", *extra]
    if test:
        sets.append(f"data.test={test}")
    return config.resolve(None, sets)


# --------------------------------------------------------------------------- npz sources

def test_folder_and_glob_concatenate_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    _npz(folder / "b_part2.npz", 6, start=10)
    _npz(folder / "a_part1.npz", 10, start=0)
    (folder / "notes.txt").write_text("ignored")
    for spec in (str(folder), str(folder / "*_part*.npz")):
        arr = load_npz(spec, "train")
        assert len(arr) == 16 and arr.x.shape == (16, 8, 8, 3)
        assert list(arr.x[:, 0, 0, 0]) == list(range(16))   # part1 then part2
        assert arr.y.dtype == np.int64 and list(arr.y[:5]) == [0, 1, 2, 3, 0]
    single = load_npz(str(folder / "b_part2.npz"), "train")
    assert len(single) == 6 and single.x[0, 0, 0, 0] == 10


def test_class_names_and_grayscale(tmp_path: Path) -> None:
    names = np.array(["cat", "dog", "eel", "fox"])
    arr = load_npz(str(_npz(tmp_path / "a.npz", 8, class_names=names)), "train")
    assert arr.class_names == list(names)
    np.savez(tmp_path / "g.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
    gray = load_npz(str(tmp_path / "g.npz"), "train")
    assert gray.x.shape == (4, 8, 8, 1) and gray.class_names == ["0", "1", "2", "3"]


@pytest.mark.parametrize("x,y,needle", [
    (np.zeros((4, 8, 8, 3), np.float32), np.arange(4), "uint8"),
    (np.zeros((4, 8), np.uint8), np.arange(4), "(N, H, W, C)"),
    (np.zeros((4, 8, 8, 5), np.uint8), np.arange(4), "C = 1 or 3"),
    (np.zeros((4, 8, 8, 3), np.uint8), np.arange(3), "vector of 4 labels"),
    (np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 2)), "vector of 4 labels"),
    (np.zeros((4, 8, 8, 3), np.uint8), -np.arange(4), "non-negative"),
])
def test_wrong_shape_npz(tmp_path: Path, x: np.ndarray, y: np.ndarray, needle: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, x=x, y=y)
    with pytest.raises(DataError) as err:
        load_npz(str(path), "train")
    assert needle in str(err.value)


def test_npz_missing_keys_mixed_shapes_and_garbage(tmp_path: Path) -> None:
    np.savez(tmp_path / "k.npz", images=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="'x' and 'y'"):
        load_npz(str(tmp_path / "k.npz"), "train")
    folder = tmp_path / "mixed"
    folder.mkdir()
    _npz(folder / "a.npz", 4, size=8)
    _npz(folder / "b.npz", 4, size=16)
    with pytest.raises(DataError, match="differs"):
        load_npz(str(folder), "train")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="cannot read"):
        load_npz(str(tmp_path / "junk.npz"), "train")


def test_missing_dataset_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "train_*.npz"
    with pytest.raises(DataError) as err:
        load_split(_cfg(str(missing)), train=True)
    msg = str(err.value)
    assert str(missing) in msg and "data.train" in msg and "'x'" in msg
    with pytest.raises(DataError, match="data.test"):
        load_split(_cfg(str(missing)), train=False)  # no test path configured


def test_missing_torchvision_dataset_names_root_and_fix(tmp_path: Path) -> None:
    cfg = config.resolve(None, [f"data.root={tmp_path / 'tv'}", "data.source=torchvision"], dataset="cifar10")
    with pytest.raises(DataError) as err:
        load_split(cfg, train=True)
    msg = str(err.value)
    assert str(tmp_path / "tv") in msg and "data.download=true" in msg and "npz" in msg


def test_unknown_dataset_without_a_source(tmp_path: Path) -> None:
    cfg = config.resolve(None, [], dataset="mnist")
    with pytest.raises(DataError) as err:
        load_split(cfg, train=True)
    assert "'mnist'" in str(err.value) and "data.source" in str(err.value)


def test_missing_imagenet16_names_the_file(tmp_path: Path) -> None:
    cfg = config.resolve(None, [f"data.root={tmp_path}"], dataset="imagenet16-120")
    with pytest.raises(DataError) as err:
        load_split(cfg, train=False)
    assert str(tmp_path / "val_data") in str(err.value)


def test_auto_source_picks_npz_for_a_path(tiny_data: dict[str, str]) -> None:
    cfg = config.resolve(None, [f"data.train={tiny_data['train']}"], dataset="anything")
    assert len(load_split(cfg, train=True)) == 120


# --------------------------------------------------------------------------- subsets

def test_balanced_prefix_quota_and_order() -> None:
    y = np.array([0] * 10 + [1, 2, 3] * 10)
    idx = balanced_prefix(y, 8)
    assert list(idx) == sorted(idx)                       # a prefix in order, not a shuffle
    assert np.bincount(y[idx], minlength=4).tolist() == [2, 2, 2, 2]
    idx = balanced_prefix(y, 10)                          # 10 = 3 + 3 + 2 + 2
    assert sorted(np.bincount(y[idx]).tolist()) == [2, 2, 3, 3]
    assert idx[:2].tolist() == [0, 1]                     # the first images of class 0
    assert len(balanced_prefix(y, 0)) == len(balanced_prefix(y, 10_000)) == len(y)


def test_balanced_prefix_of_round_robin_labels_is_the_plain_prefix() -> None:
    y = np.arange(100) % 10
    assert balanced_prefix(y, 30).tolist() == list(range(30))


def test_subset_applies_per_split(tiny_data: dict[str, str]) -> None:
    cfg = _cfg(tiny_data["train"], tiny_data["test"], "data.subset_train=20", "data.subset_test=8")
    train, test = load_split(cfg, True), load_split(cfg, False)
    assert len(train) == 20 and len(test) == 8
    assert np.bincount(train.y).tolist() == [5, 5, 5, 5]


# --------------------------------------------------------------------------- loader

def _arrays(n: int = 20, size: int = 8, seed: int = 0) -> ImageArrays:
    rng = np.random.default_rng(seed)
    return ImageArrays(rng.integers(1, 255, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 4, list("abcd"))


def _batches(loader: BatchLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(loader.epoch(epoch))


def test_loader_is_deterministic_per_seed_and_epoch() -> None:
    arr = _arrays()
    norm = Normalizer.fit(arr.x)

    def make(seed: int) -> BatchLoader:
        return BatchLoader(arr, 6, norm, shuffle=True, augment=True, cutout=4, seed=seed)

    a, b = _batches(make(1), 3), _batches(make(1), 3)
    assert len(a) == 4 and [len(yb) for _, yb in a] == [6, 6, 6, 2]
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = _batches(make(1), 4)
    assert not torch.equal(a[0][0], c[0][0])
    d = _batches(make(2), 3)
    assert not torch.equal(a[0][1], d[0][1]) or not torch.equal(a[0][0], d[0][0])
    # every epoch visits every sample exactly once
    assert sorted(torch.cat([yb for _, yb in c]).tolist()) == sorted(arr.y.tolist())


def test_loader_without_shuffle_or_augmentation_is_plain_normalisation() -> None:
    arr = _arrays(10)
    norm = Normalizer.fit(arr.x)
    loader = BatchLoader(arr, 4, norm, shuffle=False, drop_last=True)
    batches = _batches(loader, 0)
    assert len(loader) == len(batches) == 2
    x0 = torch.from_numpy(arr.x[:4]).permute(0, 3, 1, 2).float() / 255
    ref = (x0 - norm.mean.view(1, 3, 1, 1)) / norm.std.view(1, 3, 1, 1)
    assert torch.allclose(batches[0][0], ref, atol=1e-6)
    assert batches[0][1].tolist() == [0, 1, 2, 3]
    allx = torch.cat([torch.from_numpy(arr.x).float() / 255]).reshape(-1, 3)
    assert torch.allclose(norm.mean, allx.mean(0), atol=1e-5)


def test_random_crop_flip_is_a_shifted_possibly_flipped_window() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8) + 0.5  # no zeros: padding is recognisable
    out = random_crop_flip(x, gen, pad=4)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        matches = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                   if torch.equal(out[i], (lambda w: w.flip(-1) if f else w)(padded[i, :, dy:dy + 8, dx:dx + 8]))]
        assert matches, f"image {i} is not a crop of its padded original"
        flips += all(f for _, _, f in matches)
    assert out.ne(x).any()
    assert 0 < flips < len(x)  # about half the images are flipped


def test_cutout_zeroes_one_clipped_square() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.ones(16, 3, 10, 10)
    out = cutout(x, 4, gen)
    assert out.shape == x.shape
    for img in out:
        zero = img[0] == 0
        assert torch.equal(zero, (img == 0).all(0))          # same pixels in every channel
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        assert zero.sum() == len(rows) * len(cols)           # a (clipped) rectangle
        assert torch.equal(zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1],
                           torch.ones(len(rows), len(cols), dtype=torch.bool))


# --------------------------------------------------------------------------- real data

def test_real_cifar10_parts_subset(shared_data: Path) -> None:
    cfg = _cfg(str(shared_data / "cifar10" / "cifar10_train_part*.npz"),
               str(shared_data / "cifar10" / "cifar10_test.npz"), "data.subset_train=2000", "data.subset_test=100")
    train = load_split(cfg, train=True)
    assert train.x.shape == (2000, 32, 32, 3) and train.x.dtype == np.uint8
    assert np.bincount(train.y, minlength=10).tolist() == [200] * 10
    assert len(train.class_names) == 10
    test = load_split(cfg, train=False)
    assert len(test) == 100 and np.bincount(test.y).tolist() == [10] * 10


def test_synthetic_writer_matches_the_documented_format(tmp_path: Path) -> None:
    paths = write_npz_dataset(tmp_path, n_train=12, n_test=4, classes=3, size=8)
    arr = load_npz(paths["train"], "train")
    assert arr.x.shape == (12, 8, 8, 3) and arr.class_names == ["c0", "c1", "c2"]


# --------------------------------------------------------------------------- other sources

def test_imagefolder_source(tmp_path: Path) -> None:
    from PIL import Image

    for c, colour in (("ant", (255, 0, 0)), ("bee", (0, 0, 255))):
        (tmp_path / "train" / c).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 10), colour).save(tmp_path / "train" / c / f"{i}.png")
    cfg = config.resolve(None, ["data.source=imagefolder", f"data.train={tmp_path / 'train'}",
                                "data.image_size=8"], dataset="bugs")
    arr = load_split(cfg, train=True)
    assert arr.x.shape == (6, 8, 8, 3) and arr.class_names == ["ant", "bee"]
    assert arr.y.tolist() == [0, 0, 0, 1, 1, 1] and (arr.x[3:, ..., 2] == 255).all()
    cfg = config.resolve(None, [f"data.train={tmp_path / 'train'}"], dataset="bugs")  # auto -> imagefolder
    assert len(load_split(cfg, train=True)) == 6
    cfg = config.resolve(None, ["data.source=imagefolder", f"data.train={tmp_path / 'nope'}"], dataset="bugs")
    with pytest.raises(DataError, match="subfolder per class"):
        load_split(cfg, train=True)


def _imagenet16_batch(path: Path, labels: list[int]) -> None:
    data = np.arange(len(labels) * 768, dtype=np.int64).reshape(len(labels), 768) % 256
    with path.open("wb") as fh:
        pickle.dump({"data": data.astype(np.uint8), "labels": labels}, fh)


def test_imagenet16_source_keeps_the_first_120_classes(tmp_path: Path) -> None:
    for i in range(1, 11):
        _imagenet16_batch(tmp_path / f"train_data_batch_{i}", [1, 120, 121, 1000])  # labels are 1-based
    _imagenet16_batch(tmp_path / "val_data", [5, 300])
    cfg = config.resolve(None, [f"data.root={tmp_path}"], dataset="imagenet16-120")
    train = load_split(cfg, train=True)
    assert train.x.shape == (20, 16, 16, 3) and sorted(set(train.y.tolist())) == [0, 119]
    assert len(train.class_names) == 120
    assert load_split(cfg, train=False).y.tolist() == [4]


def test_imagenet16_refuses_pickled_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    for i in range(1, 11):
        with (tmp_path / f"train_data_batch_{i}").open("wb") as fh:
            pickle.dump({"data": Evil(), "labels": [1]}, fh)
    cfg = config.resolve(None, [f"data.root={tmp_path}"], dataset="imagenet16-120")
    with pytest.raises(DataError, match="refusing to unpickle"):
        load_split(cfg, train=True)
