"""Out-of-distribution score (Mahalanobis distance on penultimate features) and abstention threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leukoscope.scoring.calls import called_probability
from leukoscope.scoring.intervals import wilson


@dataclass
class MahalanobisOOD:
    """min over classes of (f - mu_c)^T P (f - mu_c), P the shrunk inverse of the shared covariance."""

    means: np.ndarray  # (K, D)
    precision: np.ndarray  # (D, D)
    threshold: float = float("inf")

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray) -> MahalanobisOOD:
        """Class means and a Ledoit-Wolf shrunk shared covariance: stable even with few images per feature."""
        from sklearn.covariance import LedoitWolf

        classes = np.unique(labels)
        means = np.stack([features[labels == c].mean(0) for c in classes])
        centred = features - means[np.searchsorted(classes, labels)]
        precision = LedoitWolf(assume_centered=True).fit(centred).precision_
        return cls(means.astype(np.float32), precision.astype(np.float32))

    def score(self, features: np.ndarray) -> np.ndarray:
        diff = features[:, None, :] - self.means[None, :, :]  # (N, K, D)
        return np.einsum("nkd,nkd->nk", diff @ self.precision, diff).min(axis=1)

    def calibrate(self, reference_features: np.ndarray, quantile: float = 0.99, margin: float = 2.0) -> float:
        """Threshold = margin x the given quantile of in-distribution scores (held-out data preferred).

        The margin absorbs the spread of a quantile estimated on a small validation split; inputs
        far outside (blank, noise, other stains) score many times higher.
        """
        self.threshold = float(np.quantile(self.score(reference_features), quantile) * margin)
        return self.threshold


def abstain_threshold(confidence: np.ndarray, correct: np.ndarray, target_error: float, floor: float = 0.5, bound: str = "estimate") -> float:
    """Lowest confidence cut whose accepted predictions have error <= target (on validation data).

    With bound="upper" the error held to the target is the Wilson 95 % upper bound of the accepted
    calls' error, not its estimate: a few hundred validation fields then cannot promise more than
    they show, and the promise holds on new fields unless the model is worse on them.
    Never below `floor`: a top probability under one half is a guess between classes, whatever
    the validation data says.
    """
    if bound not in ("estimate", "upper"):
        raise ValueError(f"unknown abstain bound {bound!r}: expected 'estimate' or 'upper'")
    if len(confidence) == 0:
        return floor
    order = np.argsort(-confidence)
    conf, ok = confidence[order], correct[order].astype(float)
    wrong, accepted = np.cumsum(1 - ok), np.arange(1, len(ok) + 1)
    if bound == "upper":
        errors = np.array([wilson(int(w), int(n))[1] for w, n in zip(wrong, accepted)])
    else:
        errors = wrong / accepted
    feasible = np.flatnonzero(errors <= target_error)
    if len(feasible) == 0:
        return float(max(conf[0], floor))
    cut = 0.0 if feasible[-1] == len(conf) - 1 else conf[feasible[-1]]
    return float(max(cut, floor))


def too_few_to_vouch(accepted: int, target_error: float) -> str:
    """Why `accepted` validation calls cannot vouch for an error of `target_error` ('' when they can): below
    1 / target of them, the target is less than one wrong call, and one more or one fewer decides the threshold."""
    if target_error <= 0 or accepted * target_error >= 1:
        return ""
    return (
        f"the abstain threshold rests on {accepted} validation field(s) it accepts, too few to tell a {100 * target_error:g} % error "
        f"from none (it needs {int(np.ceil(1 / target_error))}): expect more error on new fields; label more validation fields"
    )


def abstain_confidence(probs: np.ndarray, called: np.ndarray, benign_index: int | None = None) -> np.ndarray:
    """What the abstain threshold is held against: the called class's probability, or with a benign
    index the probability that the call's side (benign or malignant) is right."""
    probs, called = np.asarray(probs), np.asarray(called, dtype=int)
    if benign_index is None:
        return called_probability(probs, called)
    p_benign = probs[:, benign_index]
    return np.where(called == benign_index, p_benign, 1 - p_benign)


def abstain_correct(called: np.ndarray, truth: np.ndarray, benign_index: int | None = None) -> np.ndarray:
    """Whether each plain call is right on what abstention vouches for: the class, or with a benign index its side."""
    called, truth = np.asarray(called), np.asarray(truth)
    if benign_index is None:
        return called == truth
    return (called == benign_index) == (truth == benign_index)


IMAGE_STATS = (
    "R mean", "G mean", "B mean", "R std", "G std", "B std", "grey std", "log Laplacian variance",
    "(R+B)/2 - G mean", "B - (R+G)/2 mean", "stain R mean", "stain G mean", "stain B mean",
)  # fmt: skip
# what bundles written before 2026-11-26 store: one colour conversion dearer, blind to hue changes
LAB_IMAGE_STATS = ("L mean", "a mean", "b mean", "L std", "log Laplacian variance")
STAIN_THRESHOLD = 45  # (R+B)/2 - G above this is nuclear stain in a preprocessed field


def is_lab_set(names: tuple[str, ...]) -> bool:
    """Whether `names` is the older LAB set; a ValueError for a set this version cannot compute."""
    if tuple(names) not in (IMAGE_STATS, LAB_IMAGE_STATS):
        raise ValueError(f"unknown image statistics {list(names)}")
    return tuple(names) == LAB_IMAGE_STATS


def stain_colour(img: np.ndarray) -> np.ndarray:
    """Mean RGB of the nuclear-stain pixels in a half-size nearest-neighbour sample of the image.

    The stain's own colour moves with a different stain or scanner even when the field's overall
    colour stays within the range of the training sessions. With no stained pixel it is (0, 0, 0),
    unlike any stain: flagged, unless at least the fitted quantile of the training units had
    none too (pale cells among cell crops, for instance).
    """
    import cv2

    grid = cv2.resize(img, (max(1, img.shape[1] // 2), max(1, img.shape[0] // 2)), interpolation=cv2.INTER_NEAREST)
    f = grid.astype(np.int16)
    stained = ((f[..., 0] + f[..., 2]) // 2 - f[..., 1] > STAIN_THRESHOLD).astype(np.uint8)
    return np.asarray(cv2.mean(grid, mask=stained)[:3])


def image_stats(images: np.ndarray, names: tuple[str, ...] = IMAGE_STATS) -> np.ndarray:
    """Colour, contrast and sharpness statistics of preprocessed uint8 images, one row per image.

    The two colour-opponent means (purple stain against green, blue against yellow) and the stain's
    own colour let a box of per-statistic ranges notice hue shifts that leave each channel's mean
    in its training range.
    """
    import cv2

    lab = is_lab_set(names)
    out = np.zeros((len(images), len(names)))
    for i, img in enumerate(images):
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        # a 3x3 Laplacian of uint8 stays within +-1020: int16 holds it exactly
        sharpness = np.log1p(cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))[1][0, 0] ** 2)
        if lab:
            lab_mean, lab_std = cv2.meanStdDev(cv2.cvtColor(img, cv2.COLOR_RGB2LAB))
            out[i] = [*lab_mean[:, 0], lab_std[0, 0], sharpness]
            continue
        rgb_mean, rgb_std = cv2.meanStdDev(img)
        r, g, b = rgb_mean[:, 0]
        grey_std = cv2.meanStdDev(grey)[1][0, 0]
        out[i] = [r, g, b, *rgb_std[:, 0], grey_std, sharpness, (r + b) / 2 - g, b - (r + g) / 2, *stain_colour(img)]
    return out


@dataclass
class ImageStatsOOD:
    """Flags images whose colour, contrast or sharpness lie well outside the training range
    (noise, blank frames, other stains): a check that does not depend on what the network learned."""

    low: np.ndarray
    high: np.ndarray
    margin: float = 0.5
    names: tuple[str, ...] = IMAGE_STATS

    @classmethod
    def fit(cls, images: np.ndarray, quantile: float = 0.005, names: tuple[str, ...] = IMAGE_STATS) -> ImageStatsOOD:
        stats = image_stats(images, names)
        return cls(np.quantile(stats, quantile, axis=0), np.quantile(stats, 1 - quantile, axis=0), names=names)

    def outside_each(self, images: np.ndarray) -> np.ndarray:
        """(N, statistics) True where an image's statistic lies outside its widened training range."""
        if not len(images):
            return np.zeros((0, len(self.names)), bool)
        stats = image_stats(images, self.names)
        span = np.maximum(self.high - self.low, 1e-6)
        return (stats < self.low - self.margin * span) | (stats > self.high + self.margin * span)

    def outside(self, images: np.ndarray) -> np.ndarray:
        return self.outside_each(images).any(axis=1)

    def to_json(self) -> dict:
        return {"stats": list(self.names), "low": self.low.tolist(), "high": self.high.tolist(), "margin": self.margin}

    @classmethod
    def from_json(cls, d: dict) -> ImageStatsOOD:
        names = tuple(d.get("stats", LAB_IMAGE_STATS))
        is_lab_set(names)  # refused at load, not at the first prediction
        return cls(np.asarray(d["low"]), np.asarray(d["high"]), float(d["margin"]), names)
