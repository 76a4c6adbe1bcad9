"""Stand-ins for the outside world, packaged so that tests AND benchmarks use the same ones.

``sendgrid`` is an HTTP stand-in for SendGrid's v3 Mail Send and Event Webhook; ``arxiv`` a
stand-in for the arXiv API; ``sources`` stand-ins for arXiv OAI-PMH, bioRxiv and RSS/Atom
feeds (paging, busy answers, broken documents); ``processes`` starts private Redis servers
on free ports; ``samples`` builds a sample digest e-mail; ``smtp_sink`` keeps every message
it is sent as a file (the compose stack's ``mailsink``). Only the outside seams are faked:
the code under test talks to them over real sockets. Imports only ``recsys.delivery`` and
the standard library; nothing in production imports this package.
"""
