"""fsspec storage of artifacts, logs and run/task records."""

from .store import ArtifactRef, ArtifactStore, resolve_root

__all__ = ["ArtifactRef", "ArtifactStore", "resolve_root"]
