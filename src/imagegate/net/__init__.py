"""Outbound network safety: the address guard, origins, capped body reads."""

from __future__ import annotations

from .body import BodyTooLarge, read_capped
from .guard import GuardedResolver, RefusedAddress, category, check_literal, refusal
from .origins import Origin, in_family, origin_of, origins_of, trusted_origins

__all__ = [
    "BodyTooLarge",
    "GuardedResolver",
    "Origin",
    "RefusedAddress",
    "category",
    "check_literal",
    "in_family",
    "origin_of",
    "origins_of",
    "read_capped",
    "refusal",
    "trusted_origins",
]
