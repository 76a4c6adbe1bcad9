"""Paper sources and their parsers: files and arXiv feeds in, :class:`~recsys.domain.Paper` out.

Pure parsing, no database: storing papers is :mod:`recsys.catalog.papers`' job. Every
parser rejects bad input with an :class:`~recsys.domain.IngestError` naming file, line and
reason. ``files.read_papers`` picks the parser for a file by its suffix. The parsers of harvested
answers (``oai``, ``feeds``, ``biorxiv``) return a ``pages.Page`` instead: a bad record is
skipped and reported with its identifier, a bad answer raises.
"""
