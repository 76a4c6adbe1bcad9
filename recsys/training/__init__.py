"""Nightly training and the models it produces.

``nightly`` snapshots the database and fits the hybrid; ``artifacts`` writes and reads
versioned model directories atomically (npz/npy + JSON manifest, no pickle); ``model`` is the
active model as loaded by API and workers. May import ``recsys.recommender``,
``recsys.catalog`` (embeddings), ``recsys.db`` and the scoring context of ``recsys.digests.outbox``.
"""
