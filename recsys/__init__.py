"""Paperboy's core library, cut by domain so that the folders read as the data flow.

catalog/      paper sources and parsers, harvesting, de-duplicating keys, upserts, embeddings
recommender/  components behind one contract, the hybrid, fitting, fused top-k, metrics (pure)
training/     nightly training, versioned artifacts, the loaded model
subscribers/  accounts, library import, feedback events, signed links, scanner detection
digests/      schedules, the outbox (plan, claim), scoring, exploration, sending, reconcile
delivery/     composing messages; the file, SMTP and SendGrid backends
online/       experiment assignment, arms, click-through analysis
db/           models, sessions, bulk SQL, migrations (the one owner of database I/O)
testing/      stand-ins for the outside world (SendGrid, arXiv, paper sources), shared by tests
              and benchmarks

Beside them: ``settings`` (the one settings object), ``domain`` (plain records), ``progress``
(the progress callback), ``logs`` (the one logging setup), ``observability`` (the facts
``/metrics`` reads from the database) and ``synth`` (the synthetic world). Nothing in ``recsys``
imports ``api``, ``workers``, ``experiments`` or ``benchmarks``.
"""
