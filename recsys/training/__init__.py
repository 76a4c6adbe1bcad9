"""Nightly training and the models it produces.

``nightly`` snapshots the database and fits the hybrid; ``guardrail`` decides whether the new
version may replace the active one (``recsys.online.offpolicy_logs`` on the latest logs);
``artifacts`` writes and reads versioned model directories atomically (npz/npy + JSON
manifest, no pickle); ``model`` is the active model as loaded by API and workers. May import
``recsys.recommender``, ``recsys.catalog`` (embeddings), ``recsys.db``, the scoring context
of ``recsys.digests`` and the off-policy estimates of ``recsys.online``.
"""
