"""Digests, from schedule to sent: the outbox rows every state change goes through.

``schedule`` computes each subscriber's next send time in their zone; ``outbox`` plans one
digest row per user and period and claims rows with conditional updates; ``scoring`` ranks a
chunk of digests with the active model (``exploration`` draws the explored slots and their
propensities); ``sending`` composes and hands them to a delivery backend; ``reconcile``
settles ``unknown`` and stuck rows from provider events; ``preview`` shows a subscriber their
next digest. May import ``recsys.recommender``, ``recsys.training.model``, ``recsys.online``,
``recsys.subscribers``, ``recsys.delivery`` and ``recsys.db``.
"""
