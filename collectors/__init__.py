"""Collectors: one module per platform, registered by name in `collectors.base.COLLECTORS`."""

from collectors import file
from collectors.base import (
    COLLECTORS,
    Collector,
    HttpPolicy,
    Page,
    Target,
    get_collector,
    register,
)

__all__ = [
    "COLLECTORS",
    "Collector",
    "HttpPolicy",
    "Page",
    "Target",
    "file",
    "get_collector",
    "register",
]
