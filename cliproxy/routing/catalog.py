"""Model id → candidate credentials. (Skeleton: the routing issue fills this in.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cliproxy.config.model import Config


@dataclass(frozen=True)
class Catalog:
    """Immutable per-snapshot index of credentials and the models they serve."""

    credentials: tuple[Any, ...] = ()
    models: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def build_catalog(config: Config, auth_files: Sequence[Any] = ()) -> Catalog:
    return Catalog()
