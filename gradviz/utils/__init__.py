"""torch.utils for GradViz's core: ``data`` (TensorDataset, DataLoader, random_split)."""
from . import data

__all__ = ["data"]
