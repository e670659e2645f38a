"""The Qt-free view model: what every view shows, computed once and testable without a screen.

- ``phases``: the loop's phases, their titles and sentences, "micro-batch i of n";
- ``format``: the one number format;
- ``replay``: immutable frames of a recorded Trace (node states, edges, descriptions);
- ``layout``: the layered graph layout, pure geometry.
"""
