"""Running a Scenario on the core: the one training loop both the app and the command line use."""
from .history import History, Landscape, element_name, element_names, parse_element
from .session import Session, SessionError, batch_order, run_all

__all__ = ["History", "Landscape", "Session", "SessionError", "batch_order", "run_all", "element_name",
           "element_names", "parse_element"]
