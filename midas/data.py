"""Datasets as in-memory uint8 arrays, and a fast batched loader with augmentation.

Every source (torchvision CIFAR/SVHN, ImageNet16 batches, image folders, numpy
``.npz`` files) is turned into ``ImageArrays`` (NHWC uint8 + int64 labels). Small
NAS datasets fit in memory, and augmenting whole batches with torch ops on a seeded
generator is both faster than per-image PIL transforms and exactly reproducible.
"""

from __future__ import annotations

import glob
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from midas.errors import DataError

TORCHVISION = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "svhn": "SVHN"}
IMAGENET16 = {"imagenet16-120": 120, "imagenet16": 1000}


@dataclass
class ImageArrays:
    x: np.ndarray                 # (N, H, W, C) uint8
    y: np.ndarray                 # (N,) int64
    class_names: list[str]

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.x.dtype != np.uint8:
            raise DataError(f"images must be uint8 of shape (N, H, W, C), got {self.x.dtype} {self.x.shape}")
        if self.y.shape != (self.x.shape[0],):
            raise DataError(f"labels must have shape ({self.x.shape[0]},), got {self.y.shape}")
        self.y = self.y.astype(np.int64)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> ImageArrays:
        return ImageArrays(self.x[idx], self.y[idx], self.class_names)


def balanced_prefix(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first ``n`` samples in order, at most ceil(n / classes) per class."""
    if n <= 0 or n >= len(y):
        return np.arange(len(y))
    classes = np.unique(y)
    quota = {c: n // len(classes) + (1 if i < n % len(classes) else 0) for i, c in enumerate(classes)}
    keep, seen = [], dict.fromkeys(classes, 0)
    for i, c in enumerate(y):
        if seen[c] < quota[c]:
            keep.append(i)
            seen[c] += 1
            if len(keep) == n:
                break
    return np.asarray(keep)


# --------------------------------------------------------------------------- sources

def _expand(spec: str, what: str) -> list[Path]:
    p = Path(spec).expanduser()
    if p.is_dir():
        files = sorted(p.glob("*.npz"))
    elif any(ch in spec for ch in "*?["):
        files = [Path(f) for f in sorted(glob.glob(str(p)))]
    else:
        files = [p] if p.exists() else []
    if not files:
        raise DataError(
            f"no .npz files for the {what} split at {spec!r} (resolved to {p.resolve()}). "
            "Point data.train / data.test at an .npz file, a folder of .npz files or a glob; "
            "each file needs 'x' (uint8, N x H x W x C) and 'y' (labels)."
        )
    return files


def load_npz(spec: str, what: str) -> ImageArrays:
    xs, ys, names = [], [], None
    for f in _expand(spec, what):
        try:
            with np.load(f, allow_pickle=False) as z:
                if "x" not in z or "y" not in z:
                    raise DataError(f"{f}: an .npz data file needs the arrays 'x' and 'y', found {sorted(z.files)}")
                x, y = z["x"], z["y"]
                if "class_names" in z:
                    names = [str(s) for s in z["class_names"]]
        except (OSError, ValueError) as exc:
            raise DataError(f"{f}: cannot read as .npz ({exc})") from None
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.dtype != np.uint8 or x.shape[-1] not in (1, 3):
            raise DataError(f"{f}: 'x' must be uint8 of shape (N, H, W, C) with C = 1 or 3, got {x.dtype} {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{f}: 'y' must be a vector of {len(x)} labels, got shape {y.shape}")
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise DataError(f"{f}: image shape {x.shape[1:]} differs from {xs[0].shape[1:]} of earlier files")
        xs.append(x)
        ys.append(y.astype(np.int64))
    y = np.concatenate(ys)
    if y.min() < 0:
        raise DataError(f"{spec}: labels must be non-negative integers")
    n_cls = int(y.max()) + 1
    if names is None or len(names) < n_cls:
        names = [str(i) for i in range(n_cls)]
    return ImageArrays(np.concatenate(xs), y, names)


def load_torchvision(dataset: str, root: str, train: bool, download: bool) -> ImageArrays:
    import torchvision

    cls = getattr(torchvision.datasets, TORCHVISION[dataset])
    try:
        if dataset == "svhn":
            ds = cls(root, split="train" if train else "test", download=download)
            x = np.ascontiguousarray(ds.data.transpose(0, 2, 3, 1))
            return ImageArrays(x, np.asarray(ds.labels), [str(i) for i in range(10)])
        ds = cls(root, train=train, download=download)
        return ImageArrays(np.asarray(ds.data), np.asarray(ds.targets), list(ds.classes))
    except (RuntimeError, OSError) as exc:
        raise DataError(
            f"{dataset} was not found under {Path(root).resolve()} ({exc}). Either set data.download=true "
            f"(needs network access), or point data.source=npz with data.train / data.test at .npz files."
        ) from None


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """ImageNet16 batches are pickles of numpy arrays; allow those and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to unpickle {module}.{name} from an ImageNet16 file")
        return super().find_class(module, name)


def load_imagenet16(root: str, train: bool, max_class: int) -> ImageArrays:
    folder = Path(root)
    names = [f"train_data_batch_{i}" for i in range(1, 11)] if train else ["val_data"]
    xs, ys = [], []
    for n in names:
        f = folder / n
        if not f.exists():
            raise DataError(
                f"ImageNet16 file {f} is missing. Download the downsampled ImageNet 16x16 batches "
                "(train_data_batch_1..10, val_data) into data.root."
            )
        with f.open("rb") as fh:
            entry = _ArrayOnlyUnpickler(fh, encoding="latin1").load()
        xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 16, 16).transpose(0, 2, 3, 1))
        ys.append(np.asarray(entry["labels"], dtype=np.int64) - 1)
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = y < max_class
    return ImageArrays(np.ascontiguousarray(x[keep]), y[keep], [str(i) for i in range(max_class)])


def load_imagefolder(spec: str, size: int, what: str) -> ImageArrays:
    import torchvision

    if not Path(spec).is_dir():
        raise DataError(f"image folder for the {what} split {spec!r} does not exist (one subfolder per class)")
    ds = torchvision.datasets.ImageFolder(spec)
    xs = [np.asarray(img.convert("RGB").resize((size, size))) for img, _ in ds]
    return ImageArrays(np.stack(xs).astype(np.uint8), np.asarray(ds.targets), list(ds.classes))


def resolve_source(cfg: dict[str, Any]) -> str:
    source, name = cfg["data"]["source"], cfg["dataset"]
    if source != "auto":
        return source
    if cfg["data"]["train"]:
        return "imagefolder" if Path(cfg["data"]["train"]).is_dir() and not list(
            Path(cfg["data"]["train"]).glob("*.npz")) else "npz"
    if name in TORCHVISION:
        return "torchvision"
    if name in IMAGENET16:
        return "imagenet16"
    raise DataError(
        f"dataset {name!r} is not built in ({', '.join([*TORCHVISION, *IMAGENET16])}); "
        "set data.source to npz or imagefolder and data.train / data.test to its files"
    )


def load_split(cfg: dict[str, Any], train: bool) -> ImageArrays:
    """One split of the configured dataset, subset applied."""
    d = cfg["data"]
    what = "train" if train else "test"
    source = resolve_source(cfg)
    if source == "torchvision":
        if cfg["dataset"] not in TORCHVISION:
            raise DataError(f"torchvision provides {list(TORCHVISION)}, not {cfg['dataset']!r}")
        arrays = load_torchvision(cfg["dataset"], d["root"], train, d["download"])
    elif source == "imagenet16":
        arrays = load_imagenet16(d["root"], train, IMAGENET16.get(cfg["dataset"], 120))
    else:
        spec = d[what]
        if not spec:
            raise DataError(f"data.source={source} needs data.{what} (a path) for the {what} split")
        arrays = load_npz(spec, what) if source == "npz" else load_imagefolder(spec, d["image_size"], what)
    n = d["subset_train" if train else "subset_test"]
    return arrays.take(balanced_prefix(arrays.y, n)) if n else arrays


# --------------------------------------------------------------------------- loading

@dataclass
class Normalizer:
    mean: torch.Tensor  # (C,)
    std: torch.Tensor

    @classmethod
    def fit(cls, x: np.ndarray) -> Normalizer:
        f = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
        return cls(torch.tensor(f.mean(0), dtype=torch.float32), torch.tensor(f.std(0) + 1e-8, dtype=torch.float32))


class BatchLoader:
    """Batches of normalized NCHW float tensors from uint8 arrays.

    Order and augmentation depend only on ``seed`` and the epoch passed to
    ``epoch(e)``, so a resumed run sees exactly the batches of an uninterrupted one.
    """

    def __init__(self, arrays: ImageArrays, batch_size: int, norm: Normalizer, shuffle: bool,
                 augment: bool = False, cutout: int = 0, seed: int = 0, drop_last: bool = False) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(arrays.x)).permute(0, 3, 1, 2)  # N C H W uint8 view
        self.y = torch.from_numpy(arrays.y)
        self.batch_size, self.norm = batch_size, norm
        self.shuffle, self.augment, self.cutout = shuffle, augment, cutout
        self.seed, self.drop_last = seed, drop_last

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = len(self.y)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self._prepare(self.x[idx], gen), self.y[idx]

    def _prepare(self, xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x = xb.float().div_(255.0)
        if self.augment:
            x = random_crop_flip(x, gen)
        x = (x - self.norm.mean.view(1, -1, 1, 1)) / self.norm.std.view(1, -1, 1, 1)
        if self.cutout > 0:
            x = cutout(x, self.cutout, gen)
        return x.contiguous()


def random_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-image random crop of a zero-padded image, then random horizontal flip."""
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (dy.view(b, 1) + torch.arange(h).view(1, h))  # b, h
    cols = (dx.view(b, 1) + torch.arange(w).view(1, w))  # b, w
    flip = torch.rand(b, generator=gen) < 0.5
    cols = torch.where(flip.view(b, 1), cols.flip(1), cols)
    bi = torch.arange(b).view(b, 1, 1)
    out = padded.permute(0, 2, 3, 1)[bi, rows.view(b, h, 1), cols.view(b, 1, w)]  # b, h, w, c
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    """Zero one length x length square per image (centre uniform, clipped at borders)."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=gen).view(b, 1, 1)
    cx = torch.randint(0, w, (b,), generator=gen).view(b, 1, 1)
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    inside = ((ys - cy).abs() * 2 < length) & ((xs - cx).abs() * 2 < length)
    return x * (~inside).unsqueeze(1).to(x.dtype)
