"""Running a Scenario on the core: the one training loop both the app and the command line use.

build (data, model, loss and optimizer of one variant) -> engine (the optimizer step, checkpoints)
-> session (runs, divergence, replays) -> history (what a run records) and landscape (the loss
over a grid of two parameters).
"""
from .build import TENSOR_FUNCTIONS, SessionError
from .engine import batch_order
from .history import History, Landscape, element_name, element_names, parse_element
from .session import Session, run_all

__all__ = ["History", "Landscape", "Session", "SessionError", "batch_order", "run_all", "element_name",
           "element_names", "parse_element", "TENSOR_FUNCTIONS"]
