"""``gradviz.nn``: Module, Parameter, layers and losses, as in ``torch.nn``; ``nn.utils`` clips gradients."""
from . import functional, init, utils
from .modules import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Flatten,
    Identity,
    L1Loss,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Module,
    ModuleList,
    MSELoss,
    NLLLoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)

__all__ = ["functional", "init", "utils", "Module", "Parameter", "Linear", "Sequential", "ModuleList", "Identity",
           "Flatten", "Tanh", "ReLU", "LeakyReLU", "Sigmoid", "Softmax", "LogSoftmax", "MSELoss", "L1Loss",
           "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss"]
