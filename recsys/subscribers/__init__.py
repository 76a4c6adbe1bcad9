"""Subscribers: accounts, their interests and imported libraries, their feedback events.

``accounts`` signs people up, confirms, edits preferences, exports and deletes;
``events`` records clicks and "more / less like this" (the feedback the next digest reads);
``library`` parses BibTeX and CSL-JSON libraries into seed papers; ``links`` signs every
link we mail; ``scanners`` tells a mail scanner's click from a reader's. May import
``recsys.db``, ``recsys.catalog`` (to find papers) and ``recsys.digests.schedule``.
"""
