"""``gradviz.nn``: Module, Parameter, layers and losses, as in ``torch.nn``."""
from . import functional
from .modules import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    Linear,
    Module,
    MSELoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)

__all__ = ["functional", "Module", "Parameter", "Linear", "Sequential", "Tanh", "ReLU", "Sigmoid",
           "MSELoss", "L1Loss", "BCEWithLogitsLoss", "CrossEntropyLoss"]
