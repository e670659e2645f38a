"""Optimizer dashboards: the whole run at a glance, synchronised with the player's iteration.

- ``panel``: the PlotPanel base, the shared Selection, the plots' look, cursor and markers;
- ``time_series``: loss over the optimizer step, and the small multiples (cells built a few per turn);
- ``series_plots``: parameters, gradients and optimizer state over the optimizer step, every run;
- ``param_space``: loss contours over two parameters with every variant's trajectory;
- ``schedule``: the learning rate and the gradient norm before/after clipping, every run;
- ``container``: the Dashboards widget (tabs or grid, the series picker; the toolbar picks the run);
- ``export``: a plot as PNG/SVG, a History as CSV/JSON.

The panels read the Document's Histories and ``gradviz.view.series``; they never compute gradients.
"""
from .container import Dashboards, SeriesPicker
from .export import DashboardExporter, export_history, export_plot
from .panel import PlotPanel, Selection
from .param_space import ParamSpacePlot
from .schedule import SchedulePlot
from .series_plots import GradsPlot, ParamsPlot, StatePlot
from .time_series import LossPlot

__all__ = ["DashboardExporter", "Dashboards", "GradsPlot", "LossPlot", "ParamSpacePlot", "ParamsPlot",
           "PlotPanel", "SchedulePlot", "Selection", "SeriesPicker", "StatePlot", "export_history", "export_plot"]
