"""Resource requests and the cluster backends that serve them."""

from .base import ClusterBackend, ResourceRequest
from .local import LocalBackend

__all__ = ["ClusterBackend", "LocalBackend", "ResourceRequest"]
