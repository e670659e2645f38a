"""Optimizers matching ``torch.optim`` (PyTorch 2.13): same names, defaults, state keys and numbers.

Each optimizer is a thin class around a pure update function on numpy arrays (``sgd_update``,
``adam_update``, ...) that the UI can call directly to show one step.
"""
from . import lr_scheduler
from .adagrad import Adagrad, adagrad_update
from .adam import Adam, AdamW, adam_update, adamw_update
from .optimizer import Optimizer, required
from .rmsprop import RMSprop, rmsprop_update
from .sgd import SGD, sgd_update

__all__ = ["lr_scheduler", "Optimizer", "required", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
           "sgd_update", "adam_update", "adamw_update", "rmsprop_update", "adagrad_update"]
