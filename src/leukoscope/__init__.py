"""leukoscope: ALL subtype classification from smear images — a research tool and second reader."""

__version__ = "0.1.0"

CLASS_NAMES_DEFAULT = ("Benign", "Early", "Pre", "Pro")


def load_bundle(path):  # noqa: ANN001, ANN201 - thin lazy re-export keeps `import leukoscope` light
    """Rebuild a trained model and its pipeline from a bundle folder (no unpickling)."""
    from leukoscope.scoring.bundle import load_bundle as _load

    return _load(path)
