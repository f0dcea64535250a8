"""Dataset sources returning plain tensors: an ImageFolder-style directory, or scikit-learn's digits.

Images are held in memory as normalised float32 tensors at a base size and resized on demand to a
subnet's resolution (antialiased), so one load serves every resolution. How they are resized, cropped and
normalised comes from a `Preprocessing` record (the weights' metadata, `compat.released.preprocessing_of`, or an
export's ``export_report.json``); OFA's ImageNet evaluation when none is given. Splits are fixed
by a seed: a holdout set (accuracy measurement), the training set (everything else), and a
calibration subset of the training set (BN recalibration), as OFA does with its 10K holdout and
2,000 calibration images.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ofa_deploy.errors import ConfigError
from ofa_deploy.preprocessing import OFA_IMAGENET, Preprocessing

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class ImageDataset:
    """Normalised images (N, 3, H, W) float32 at a base size, int64 labels, and provenance."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    n_classes: int
    classes: tuple[str, ...] = ()
    interpolation: str = "bilinear"
    _resized: dict[int, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def base_size(self) -> int:
        return int(self.images.shape[-1])

    def at(self, resolution: int) -> torch.Tensor:
        """All images resized to `resolution` (cached per resolution)."""
        resolution = int(resolution)
        if resolution == self.base_size:
            return self.images
        if resolution not in self._resized:
            self._resized[resolution] = _resize(self.images, resolution, self.interpolation)
        return self._resized[resolution]

    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> ImageDataset:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return ImageDataset(name or self.name, self.images[idx], self.labels[idx], self.n_classes, self.classes,
                            self.interpolation)

    def batches(self, resolution: int, batch_size: int, *, shuffle: bool = False,
                rng: np.random.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) batches at `resolution`, in order or shuffled by `rng`."""
        images = self.at(resolution)
        order = (rng or np.random.default_rng(0)).permutation(len(self)) if shuffle else np.arange(len(self))
        for i in range(0, len(self), batch_size):
            idx = torch.as_tensor(order[i : i + batch_size])
            yield images[idx], self.labels[idx]

    def fingerprint(self) -> str:
        """sha256 of the images and labels (provenance of measurements)."""
        h = hashlib.sha256()
        h.update(self.images.numpy().tobytes())
        h.update(self.labels.numpy().tobytes())
        return h.hexdigest()


@dataclass
class DataSplits:
    """Seeded train / calibration (⊂ train) / holdout splits of one source."""

    name: str
    train: ImageDataset
    calibration: ImageDataset
    holdout: ImageDataset
    seed: int
    source: dict[str, Any]

    @property
    def n_classes(self) -> int:
        return self.train.n_classes

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "n_train": len(self.train),
                "n_calibration": len(self.calibration), "n_holdout": len(self.holdout),
                "n_classes": self.n_classes, "image_size": self.train.base_size, **self.source}


def _resize(images: torch.Tensor, size: int, interpolation: str) -> torch.Tensor:
    antialias = interpolation in ("bilinear", "bicubic")
    extra: dict[str, Any] = {"align_corners": False, "antialias": True} if antialias else {}
    return F.interpolate(images, size=(size, size), mode=interpolation, **extra).contiguous()


def _normalise(x: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    mean = torch.tensor(preprocessing.mean, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, dtype=x.dtype).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def _split(name: str, images: torch.Tensor, labels: torch.Tensor, n_classes: int, classes: tuple[str, ...], *,
           seed: int, holdout_fraction: float, calibration_size: int, source: dict[str, Any],
           interpolation: str) -> DataSplits:
    n = int(labels.numel())
    if not 0 < holdout_fraction < 1:
        raise ConfigError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_hold = int(round(holdout_fraction * n))
    if n_hold < 1 or n - n_hold < 1:
        raise ConfigError(f"{name}: {n} images are too few to split off a {holdout_fraction:.0%} holdout")
    hold, train = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    calib_n = min(int(calibration_size), len(train))
    calib = np.sort(np.random.default_rng(seed + 1).choice(train, size=calib_n, replace=False))
    full = ImageDataset(name, images, labels, n_classes, classes, interpolation)
    return DataSplits(name, full.subset(train, f"{name}:train"), full.subset(calib, f"{name}:calibration"),
                      full.subset(hold, f"{name}:holdout"), seed, source)


def load_digits(*, image_size: int = 32, seed: int = 0, holdout_fraction: float = 0.3,
                calibration_size: int = 256, preprocessing: Preprocessing | None = None) -> DataSplits:
    """scikit-learn's 1,797 8×8 digits (shipped in the package), upscaled to `image_size`, 3 channels.

    `preprocessing` gives the interpolation and mean/std (default OFA's ImageNet evaluation); the 8×8 images are
    upscaled whole (no crop)."""
    from sklearn.datasets import load_digits as sk_digits

    prep = (preprocessing or OFA_IMAGENET).at(image_size)
    data = sk_digits()
    x = torch.from_numpy(data.images.astype(np.float32) / 16.0).unsqueeze(1)
    mode = {"bilinear": {"mode": "bilinear", "align_corners": False},
            "bicubic": {"mode": "bicubic", "align_corners": False}}.get(prep.interpolation, {"mode": "nearest"})
    x = F.interpolate(x, size=(image_size, image_size), **mode)
    x = _normalise(x.clamp(0, 1).expand(-1, 3, -1, -1), prep)
    y = torch.from_numpy(data.target.astype(np.int64))
    return _split("digits", x, y, 10, tuple(str(i) for i in range(10)), seed=seed, holdout_fraction=holdout_fraction,
                  calibration_size=calibration_size, interpolation=prep.interpolation,
                  source={"source": "sklearn.datasets.load_digits", "preprocessing": prep.to_dict()})


def _read_image(path: Path, prep: Preprocessing) -> torch.Tensor:
    from PIL import Image

    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[prep.interpolation]
    image_size, short = prep.resolution, prep.resize_to
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = short / min(w, h)
        img = img.resize((max(short, round(w * scale)), max(short, round(h * scale))), resample)
        w, h = img.size
        left, top = (w - image_size) // 2, (h - image_size) // 2
        img = img.crop((left, top, left + image_size, top + image_size))
        arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)


def load_image_folder(root: str | os.PathLike[str], *, image_size: int = 224, seed: int = 0,
                      holdout_fraction: float = 0.3, calibration_size: int = 2000,
                      max_per_class: int | None = None, preprocessing: Preprocessing | None = None) -> DataSplits:
    """An ImageNet-layout directory (one subdirectory of images per class), read with Pillow.

    Images are resized (shorter side ``image_size / crop_ratio``), center-cropped to `image_size` and
    normalised as `preprocessing` says (default OFA's ImageNet evaluation: crop ratio 0.875, bilinear, ImageNet
    mean/std; its resolution is replaced by `image_size`). Everything is loaded into memory: cap large folders
    with `max_per_class`.
    """
    prep = (preprocessing or OFA_IMAGENET).at(image_size)
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"dataset directory {root} does not exist; expected class subdirectories of images")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not classes:
        raise ConfigError(f"{root} has no class subdirectories; expected the ImageFolder layout root/<class>/<image>")
    paths: list[tuple[Path, int]] = []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += [(p, label) for p in files[: max_per_class or None]]
    if not paths:
        raise ConfigError(f"{root}: no images with suffixes {', '.join(IMAGE_SUFFIXES)} in its class directories")
    log.info("reading %d images of %d classes from %s", len(paths), len(classes), root)
    x = torch.stack([_read_image(p, prep) for p, _ in paths])
    y = torch.tensor([label for _, label in paths], dtype=torch.int64)
    return _split(root.name, _normalise(x, prep), y, len(classes), classes, seed=seed,
                  holdout_fraction=holdout_fraction, calibration_size=calibration_size,
                  interpolation=prep.interpolation,
                  source={"source": "image_folder", "root": str(root.resolve()), "max_per_class": max_per_class,
                          "preprocessing": prep.to_dict()})


def load_dataset(spec: str, *, image_size: int, seed: int = 0, holdout_fraction: float = 0.3,
                 calibration_size: int = 256, max_per_class: int | None = None,
                 preprocessing: Preprocessing | None = None) -> DataSplits:
    """``"digits"`` or the path of an ImageFolder-style directory, prepared as `preprocessing` says."""
    if spec == "digits":
        return load_digits(image_size=image_size, seed=seed, holdout_fraction=holdout_fraction,
                           calibration_size=calibration_size, preprocessing=preprocessing)
    if not Path(spec).is_dir():
        raise ConfigError(f"unknown dataset {spec!r}: expected 'digits' or an ImageFolder-style directory")
    return load_image_folder(spec, image_size=image_size, seed=seed, holdout_fraction=holdout_fraction,
                             calibration_size=calibration_size, max_per_class=max_per_class,
                             preprocessing=preprocessing)
