"""Which view PyTorch's basic indexing makes (its grad_fn name); ``t[i] = v`` is in ``_inplace``."""
from __future__ import annotations

import numpy as np


def index_kind(index, shape) -> str | None:
    """PyTorch's grad_fn for basic indexing is the last view it applies (None: advanced indexing).

    ``x[i]`` is a select, ``x[a:b]`` a slice, ``x[None]`` an unsqueeze; inside a tuple, slices that
    cover their whole dimension are skipped, and if nothing is left the result is an alias.
    """
    if isinstance(index, slice):
        return "slice"
    index = index if isinstance(index, tuple) else (index,)
    kind, dim = "alias", 0
    for i in index:
        if i is None:
            kind = "unsqueeze"
        elif i is Ellipsis:
            dim += len(shape) - sum(1 for j in index if j is not None and j is not Ellipsis)
        elif isinstance(i, slice):
            if dim < len(shape) and i.indices(shape[dim]) != (0, shape[dim], 1):
                kind = "slice"
            dim += 1
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            kind, dim = "select", dim + 1
        else:
            return None
    return kind
