"""The off-policy estimators, re-exported: they live in ``recsys.online.offpolicy`` so that the
nightly training guard-rail (``recsys.training.guardrail``) runs the very code of
``paperboy experiment offpolicy``."""

from recsys.online.offpolicy import (
    Estimate,
    LoggedSlates,
    bootstrap_interval,
    doubly_robust,
    ips,
    pseudo_inverse,
    snips,
    take,
)

__all__ = [
    "Estimate",
    "LoggedSlates",
    "bootstrap_interval",
    "doubly_robust",
    "ips",
    "pseudo_inverse",
    "snips",
    "take",
]
