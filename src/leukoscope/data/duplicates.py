"""Exact and near-duplicate search, and the groups that keep duplicates inside one split.

Near duplicates (the same field photographed twice, re-encoded or slightly shifted) are found in
two steps: perceptual-hash neighbours as candidates, then confirmed by the normalised correlation of
grey thumbnails after phase-correlation alignment. Measured on the Taleqani release: confirmed pairs
of the original fields correlate at 0.94 or more and lie within Hamming distance 10, while the
closest images of different classes lie at 12 or more; unrelated sparse segmented images can reach
0.85, hence the 0.9 threshold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import cv2
import numpy as np

PHASH_CANDIDATE_DISTANCE = 10
ALIGNED_CORRELATION_MIN = 0.9
MAX_SHIFT_FRACTION = 1 / 3
BLUR_SIGMA = 1.0


def exact_duplicate_groups(hashes: Sequence[str]) -> list[list[int]]:
    """Indices sharing one content hash, each group sorted; only groups of two or more."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        if h:
            by_hash[h].append(i)
    return [g for g in by_hash.values() if len(g) > 1]


def hamming_pairs(phashes: Sequence[str], max_distance: int = PHASH_CANDIDATE_DISTANCE) -> list[tuple[int, int, int]]:
    """All (i, j, distance) with i < j and distance <= max_distance, by chunked popcount."""
    values = np.array([int(h, 16) for h in phashes], dtype=np.uint64)
    pairs: list[tuple[int, int, int]] = []
    chunk = 512
    for start in range(0, len(values), chunk):
        block = values[start : start + chunk]
        dist = np.bitwise_count(block[:, None] ^ values[None, :])
        rows, cols = np.nonzero(dist <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if i < c:
                pairs.append((i, c, int(dist[r, c])))
    return pairs


def aligned_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two grey thumbnails over their overlap after the best translation."""
    # a light blur removes JPEG block patterns, which otherwise correlate between sparse dark images
    a32 = cv2.GaussianBlur(a.astype(np.float32), (0, 0), BLUR_SIGMA)
    b32 = cv2.GaussianBlur(b.astype(np.float32), (0, 0), BLUR_SIGMA)
    (dx, dy), _ = cv2.phaseCorrelate(a32, b32)
    dx, dy = int(round(dx)), int(round(dy))
    h, w = a32.shape
    if abs(dx) > w * MAX_SHIFT_FRACTION or abs(dy) > h * MAX_SHIFT_FRACTION:
        return 0.0
    # phaseCorrelate reports b as a moved by (dx, dy): b[y, x] ~ a[y - dy, x - dx]
    pa = a32[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)]
    pb = b32[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
    pa, pb = pa - pa.mean(), pb - pb.mean()
    denom = float(np.sqrt((pa * pa).sum() * (pb * pb).sum()))
    return float((pa * pb).sum() / denom) if denom > 0 else 0.0


def near_duplicate_pairs(
    phashes: Sequence[str],
    thumbnails: Sequence[np.ndarray | None],
    max_distance: int = PHASH_CANDIDATE_DISTANCE,
    min_correlation: float = ALIGNED_CORRELATION_MIN,
) -> list[tuple[int, int]]:
    """Confirmed near-duplicate pairs (exact byte duplicates included when their pixels agree)."""
    confirmed = []
    for i, j, _ in hamming_pairs(phashes, max_distance):
        ti, tj = thumbnails[i], thumbnails[j]
        if ti is not None and tj is not None and aligned_correlation(ti, tj) >= min_correlation:
            confirmed.append((i, j))
    return confirmed


def connected_groups(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Connected components (of size >= 2) of the graph on n nodes with the given edges."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    comps: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        comps[find(i)].append(i)
    return [c for c in comps.values() if len(c) > 1]
