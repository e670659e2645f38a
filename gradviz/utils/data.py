"""``torch.utils.data``: datasets, samplers and the DataLoader, drawing from torch's random stream.

The DataLoader is torch's single-process loader, structure for structure, so a shuffled epoch
gives torch's batches for the same seed and leaves the generator where torch leaves it:

- each ``iter(loader)`` first draws a ``_base_seed`` (one int64 from the loader's generator, or
  from the global one), as torch's ``_BaseDataLoaderIter`` does, shuffled or not;
- ``RandomSampler`` then, lazily at the first batch, draws one more int64 from the global
  generator, seeds a fresh ``Generator`` with it and takes ``randperm(n)`` from that (with a
  generator given: ``randperm(n, generator)`` directly, and a second one when the epoch's indices
  run out, which torch draws too);
- ``BatchSampler`` groups the indices, ``default_collate`` stacks the samples: a TensorDataset
  gives a *list* ``[inputs, targets]`` of batches, Python floats become float64 tensors, ints
  int64, as in torch.

``num_workers``, ``pin_memory`` and the like are accepted and change nothing: batches are loaded in
the script's own process (the same batches torch's workers would produce for a map-style dataset).
Batches of a TensorDataset are gathered with one numpy indexing per tensor, outside the recorded
graph: they enter a trace as input leaves, as a batch does in torch's graph.
"""
from __future__ import annotations

import collections.abc
import copy
import itertools
import math
import warnings

import numpy as np

from .._tensor import Tensor, float64, from_array, int64, randperm
from .._tensor import tensor as _tensor
from ..random import Generator, random_int64

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "random_split", "Sampler", "SequentialSampler",
           "RandomSampler", "SubsetRandomSampler", "BatchSampler", "DataLoader", "default_collate",
           "default_convert"]


# -- datasets -------------------------------------------------------------------------------------
class Dataset:
    """A map-style dataset: ``__getitem__(index)`` and ``__len__`` (``torch.utils.data.Dataset``)."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other):
        raise NotImplementedError("ConcatDataset is not supported by GradViz's core")


class IterableDataset(Dataset):
    """A dataset that is iterated (``__iter__``), not indexed."""

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")


class TensorDataset(Dataset):
    """Samples are ``tuple(t[index] for t in tensors)``: the tensors share their first dimension."""

    def __init__(self, *tensors: Tensor) -> None:
        if any(tensors[0].size(0) != t.size(0) for t in tensors):
            raise AssertionError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].size(0)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset, indices) -> None:
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset, lengths, generator: Generator | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping Subsets of the given lengths (or fractions summing to 1),
    from ``randperm(len(dataset))`` as torch draws it."""
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        subset_lengths = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            subset_lengths.append(math.floor(len(dataset) * frac))
        remainder = len(dataset) - sum(subset_lengths)
        for i in range(remainder):
            subset_lengths[i % len(subset_lengths)] += 1
        lengths = subset_lengths
        for i, length in enumerate(lengths):
            if length == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=2)
    if sum(lengths) != len(dataset):
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    indices = randperm(sum(lengths), generator=generator).tolist()
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, indices[offset:offset + length]))
        offset += length
    return out


# -- samplers -------------------------------------------------------------------------------------
class Sampler:
    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A shuffled order per epoch, drawn as torch's RandomSampler draws it (see the module docstring)."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None) -> None:
        self.data_source, self.replacement, self._num_samples, self.generator = (
            data_source, replacement, num_samples, generator)
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.generator is None:
            generator = Generator().manual_seed(random_int64())
        else:
            generator = self.generator
        if self.replacement:
            raise NotImplementedError("RandomSampler(replacement=True) is not supported by GradViz's core")
        for _ in range(self.num_samples // n):
            yield from randperm(n, generator=generator).tolist()
        yield from randperm(n, generator=generator).tolist()[:self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    def __init__(self, indices, generator: Generator | None = None) -> None:
        self.indices, self.generator = indices, generator

    def __iter__(self):
        for i in randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups a sampler's indices into lists of ``batch_size`` (the last one shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        sampler_iter = iter(self.sampler)
        if self.drop_last:
            for batch in zip(*[sampler_iter] * self.batch_size):
                yield [*batch]
        else:
            batch = [*itertools.islice(sampler_iter, self.batch_size)]
            while batch:
                yield batch
                batch = [*itertools.islice(sampler_iter, self.batch_size)]

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


# -- collation ------------------------------------------------------------------------------------
def _stack(tensors: list) -> Tensor:
    if any(t.requires_grad for t in tensors):          # a dataset of tensors in a graph: stay in it
        from .._ops import stack
        return stack(tensors, 0)
    shapes = {t._data.shape for t in tensors}
    if len(shapes) > 1:
        first = tensors[0].shape
        bad = next(i for i, t in enumerate(tensors) if t.shape != first)
        raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 and "
                           f"{list(tensors[bad].shape)} at entry {bad}")
    return from_array(np.stack([t._data for t in tensors]))


def default_collate(batch):
    """Stack a list of samples into a batch, as torch's ``default_collate``: tensors are stacked, numpy
    arrays become tensors, floats float64 and ints int64 tensors; tuples come back as *lists*."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if isinstance(elem, np.ndarray) and elem.dtype.kind in "biufc":
        return _stack([from_array(np.asarray(b)) for b in batch])
    if isinstance(elem, np.generic) and not isinstance(elem, (np.str_, np.bytes_)):
        return from_array(np.array(batch))
    if isinstance(elem, float):
        return _tensor(batch, dtype=float64)
    if isinstance(elem, bool):
        return _tensor(batch)
    if isinstance(elem, int):
        return _tensor(batch, dtype=int64)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        out = {key: default_collate([d[key] for d in batch]) for key in elem}
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(out)
            return clone
        return out
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if not all(len(e) == size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [list(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return [default_collate(s) for s in transposed]         # torch's "backwards compatibility"
        return [default_collate(s) for s in transposed]
    raise TypeError("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem)}")


def default_convert(data):
    """What a loader with ``batch_size=None`` returns: numpy arrays become tensors, the rest is kept."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "biufc":
        return from_array(data)
    if isinstance(data, tuple) and not hasattr(data, "_fields"):
        return [default_convert(d) for d in data]        # a list, as torch's "backwards compatibility"
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data


def _gather(dataset, indices: list):
    """A TensorDataset's batch (or a Subset of one) as ``default_collate`` would give it: one numpy take
    per tensor. None when the fast way does not apply."""
    while isinstance(dataset, Subset):
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset or any(t.requires_grad for t in dataset.tensors):
        return None
    n = len(dataset)
    for i in indices:
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for dimension 0 with size {n}")
    idx = np.asarray(indices, dtype=np.intp)
    return [from_array(t._data[idx]) for t in dataset.tensors]


# -- the loader -----------------------------------------------------------------------------------
class DataLoader:
    """Batches of a dataset, optionally shuffled from torch's random stream (``torch.utils.data.DataLoader``)."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator: Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True) -> None:
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        self.dataset, self.num_workers = dataset, num_workers
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None or batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler option")
        elif sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.generator, self.pin_memory, self.timeout = generator, pin_memory, timeout
        self._default_collate = collate_fn is None
        self.collate_fn = collate_fn or (default_collate if batch_size is not None or batch_sampler is not None
                                         else default_convert)

    @property
    def _index_sampler(self):
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return len(self._index_sampler)

    def __iter__(self):
        if self._iterable:
            random_int64(self.generator)         # torch's _base_seed
            return self._iterate_dataset()
        sampler_iter = iter(self._index_sampler)  # a generator: the sampler draws at the first batch
        random_int64(self.generator)             # torch's _base_seed, drawn when the iterator is made
        return self._batches(sampler_iter)

    def _batches(self, sampler_iter):
        dataset, collate = self.dataset, self.collate_fn
        auto = self.batch_sampler is not None
        for index in sampler_iter:
            if not auto:
                yield collate(dataset[index])
                continue
            batch = _gather(dataset, index) if self._default_collate else None
            if batch is None:
                getitems = getattr(dataset, "__getitems__", None)
                samples = getitems(index) if callable(getitems) else [dataset[i] for i in index]
                batch = collate(samples)
            yield batch

    def _iterate_dataset(self):
        it = iter(self.dataset)
        if self.batch_size is None:
            for sample in it:
                yield self.collate_fn(sample)
            return
        while True:
            samples = list(itertools.islice(it, self.batch_size))
            if not samples or (self.drop_last and len(samples) < self.batch_size):
                return
            yield self.collate_fn(samples)
