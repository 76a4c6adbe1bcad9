"""Off-policy estimates from the service's own logs, re-exported: the code lives in
``recsys.online.offpolicy_logs`` so that the nightly training guard-rail
(``recsys.training.guardrail``) and ``paperboy experiment offpolicy`` call one function
(:func:`offpolicy_report`) and can never disagree."""

from recsys.online.offpolicy_logs import (
    ESTIMATORS,
    MAX_SLOTS,
    MAX_UNSUPPORTED,
    MIN_ESS,
    Accumulator,
    DigestTerms,
    VariantResult,
    chunk_terms,
    digest_terms,
    estimate_variant,
    logged_marginals,
    mixture_shares,
    offpolicy_report,
    ranked_marginals,
    ranked_pool_columns,
    support_problem,
    to_slates,
)

__all__ = [
    "ESTIMATORS",
    "MAX_SLOTS",
    "MAX_UNSUPPORTED",
    "MIN_ESS",
    "Accumulator",
    "DigestTerms",
    "VariantResult",
    "chunk_terms",
    "digest_terms",
    "estimate_variant",
    "logged_marginals",
    "mixture_shares",
    "offpolicy_report",
    "ranked_marginals",
    "ranked_pool_columns",
    "support_problem",
    "to_slates",
]
