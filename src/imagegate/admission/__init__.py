"""Admission control: rate limits (GCRA + concurrency slots) and budgets, in-process or shared
through Redis. See docs/workspaces-and-keys.md for how things are counted."""

from .admission import Admission, Reservation, Ticket
from .limits import BudgetCheck, BudgetExceeded, RateCheck, RateLimitExceeded

__all__ = [
    "Admission",
    "BudgetCheck",
    "BudgetExceeded",
    "RateCheck",
    "RateLimitExceeded",
    "Reservation",
    "Ticket",
]
