"""fsspec storage of artifacts, logs and run/task records; owns the whole layout.

See ``store.py`` for its layers and ``docs/storage.md`` for every kind of file.
"""

from .artifacts import ArtifactRef
from .batches import pack_results, unpack_results
from .store import ArtifactStore, resolve_root
from .tasks import TaskRecords

__all__ = ["ArtifactRef", "ArtifactStore", "TaskRecords", "pack_results", "resolve_root",
           "unpack_results"]
