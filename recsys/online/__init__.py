"""Online experiments on real subscribers: who gets which ranker, and what it earned.

``assignment`` puts each user in an arm by a salted hash (no table to keep in sync) and
defines the ranker configurations arms may change; ``experiments`` stores the running
experiment and resolves each user's arm (holdout first); ``analysis`` reads logged digests,
pools and attributed clicks back into click-through per arm. May import ``recsys.db`` and
``recsys.digests.exploration`` (the logged candidate masks); the offline engine lives in
the top-level ``experiments`` package.
"""
