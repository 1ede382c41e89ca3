"""A patient's fields as one case: every leukocyte classified, a gallery to review, a printable report."""
