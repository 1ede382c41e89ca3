"""Data stage: read images safely, discover datasets, build manifests, audit, split, synthesise."""
