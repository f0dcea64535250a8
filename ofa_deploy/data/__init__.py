"""Image datasets for BN recalibration, accuracy measurement and the demo: plain tensors, no torchvision."""
from ofa_deploy.data.datasets import DataSplits, ImageDataset, load_dataset, load_digits, load_image_folder

__all__ = ["DataSplits", "ImageDataset", "load_dataset", "load_digits", "load_image_folder"]
