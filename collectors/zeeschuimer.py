"""Mappings from 4CAT/Zeeschuimer NDJSON export items (TikTok, Instagram, Facebook) to Posts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline.records import Post


def mapper_for(data: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Post] | None:
    """The mapper for a Zeeschuimer item, or None when the object is not one."""
    return None
