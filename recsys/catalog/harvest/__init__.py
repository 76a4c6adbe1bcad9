"""Harvesting: the operator's sources file, the one HTTP module that talks to outside paper
sources, per-source state in the database, and the run that ties them together.

``config`` reads and validates the TOML sources file; ``fetch`` owns every request to an
outside source (timeouts, retries, ``Retry-After``) and turns answers into pages with the
pure parsers of :mod:`recsys.catalog.sources`; ``state`` keeps each source's watermark,
lease and last result; ``run`` harvests sources into the catalogue through
:func:`recsys.catalog.papers.upsert_papers`.
"""
