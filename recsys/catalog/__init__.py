"""The paper catalogue: sources and parsers in, de-duplicated ``papers`` rows and embeddings out.

``sources/`` turns files and outside feeds into :class:`~recsys.domain.Paper` records (pure
parsing, no database); ``harvest/`` reads the operator's sources file, owns the HTTP to
outside paper sources and runs them into the catalogue, keeping each source's watermark;
``keys`` normalises the identifiers that de-duplicate them; ``papers`` upserts them into the
database; ``embeddings`` owns the embedders and the memory-mapped embedding store. May import
``recsys.db``, ``recsys.domain`` and ``recsys.settings``; nothing from the other domain
packages imports back into parsing.
"""
