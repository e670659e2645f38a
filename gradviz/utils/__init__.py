"""torch.utils for GradViz's core: ``data`` (TensorDataset, DataLoader)."""
