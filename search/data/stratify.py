"""Stratified sampling: proportional allocation over classes, random picks per class, held-out
fractions and subsets, deterministic for a seed."""

from __future__ import annotations

import numpy as np


def _allocate(
    counts: np.ndarray, total: int, rng: np.random.Generator, caps: np.ndarray | None = None
) -> np.ndarray:
    """Splits ``total`` items over classes in proportion to ``counts``.

    Each class gets at most its cap (default: its count); every class with room gets at least one
    when ``total`` allows; otherwise the largest classes win, ties broken at random.

    Args:
        counts: items per class.
        total: how many to hand out.
        rng: breaks ties.
        caps: the most each class may get.

    Returns:
        int64 allocation per class, summing to min(total, caps.sum()).
    """
    counts = np.asarray(counts, dtype=np.int64)
    caps = counts.copy() if caps is None else np.minimum(np.asarray(caps, dtype=np.int64), counts)
    caps = np.maximum(caps, 0)
    total = int(min(max(total, 0), caps.sum()))
    alloc = np.zeros_like(counts)
    tiebreak = rng.permutation(len(counts))
    remaining = total
    while remaining > 0:
        room = caps - alloc
        active = room > 0
        weights = np.where(active, counts, 0).astype(np.float64)
        share = remaining * weights / weights.sum()
        add = np.minimum(np.floor(share).astype(np.int64), room)
        if add.sum() == 0:
            frac = np.where(active, share, -1.0)
            order = np.lexsort((tiebreak, -frac))
            add[order[:remaining]] = 1
        alloc += add
        remaining -= int(add.sum())
    # Every class with room gets at least one, taken from the currently largest allocation.
    needy = np.flatnonzero((alloc == 0) & (caps > 0))
    for cls in needy[np.argsort(tiebreak[needy])]:
        donor = int(np.argmax(alloc))
        if alloc[donor] <= 1:
            break
        alloc[donor] -= 1
        alloc[cls] += 1
    return alloc


def _pick(
    y: np.ndarray, alloc: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (picked, rest) sorted indices: ``alloc[c]`` random indices of each class c."""
    order = np.argsort(y, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(y[order], minlength=len(alloc)))])
    picked: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for cls in range(len(alloc)):
        idx = order[bounds[cls] : bounds[cls + 1]]
        if idx.size == 0:
            continue
        perm = rng.permutation(idx)
        picked.append(perm[: alloc[cls]])
        rest.append(perm[alloc[cls] :])
    empty = np.zeros(0, dtype=np.int64)
    return (
        np.sort(np.concatenate(picked)) if picked else empty,
        np.sort(np.concatenate(rest)) if rest else empty,
    )


def _rng(*parts: int) -> np.random.Generator:
    """A generator seeded by integers (negative ones too)."""
    return np.random.default_rng(np.random.SeedSequence([int(p) % 2**64 for p in parts]))


def _subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    alloc = _allocate(_class_counts(y), n, rng)
    picked, _ = _pick(y, alloc, rng)
    return picked


def _class_counts(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise ValueError("labels must be non-negative integers")
    return np.bincount(y.astype(np.int64, copy=False), minlength=1)


def _holdout(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (keep, hold) index arrays: a stratified ``fraction`` of ``y`` held out.

    Every class keeps at least one item; every class with at least two gives at least one when the
    hold-out size allows.
    """
    y = np.asarray(y)
    counts = _class_counts(y)
    n_hold = round(fraction * y.size)
    n_hold = min(max(n_hold, 1 if y.size > 1 else 0), max(y.size - 1, 0))
    alloc = _allocate(counts, n_hold, rng, caps=counts - 1)
    hold, keep = _pick(y, alloc, rng)
    return keep, hold


def stratified_subset(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Picks at most ``n`` indices of ``y`` keeping the class proportions.

    Every class keeps at least one index when ``n`` is at least the number of classes present.
    Deterministic for a seed.

    Args:
        y: integer labels, shape (N,).
        n: the most indices to return.
        seed: the random seed.

    Returns:
        Sorted int64 indices into ``y``; all of them when ``n >= len(y)``.

    Raises:
        ValueError: when ``n`` is negative.
    """
    y = np.asarray(y).reshape(-1)
    if n < 0:
        raise ValueError(f"subset size must be non-negative, got {n}")
    if n >= y.size:
        return np.arange(y.size, dtype=np.int64)
    return _subset(y.astype(np.int64, copy=False), int(n), _rng(seed))
