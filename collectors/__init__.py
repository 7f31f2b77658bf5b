"""Collectors: one module per platform, registered by name in `collectors.base.COLLECTORS`.

Importing this package registers every collector; adding one is one module plus one line here.
"""

from collectors import bluesky, file, mastodon, rss, telegram, x, youtube
from collectors.base import (
    COLLECTORS,
    Collector,
    HttpPolicy,
    Page,
    Target,
    get_collector,
    register,
)

PLATFORM_MODULES = (bluesky, file, mastodon, rss, telegram, x, youtube)

__all__ = [
    "COLLECTORS",
    "PLATFORM_MODULES",
    "Collector",
    "HttpPolicy",
    "Page",
    "Target",
    "get_collector",
    "register",
]
