"""Online experiments on real subscribers: who gets which ranker, and what it earned.

``assignment`` puts each user in an arm by a salted hash (no table to keep in sync) and
defines the ranker configurations arms may change; ``experiments`` stores the running
experiment and resolves each user's arm (holdout first); ``analysis`` reads logged digests,
pools and attributed clicks back into click-through per arm. ``logged`` is the one reader
of the ranking log, ``offpolicy`` the IPS/SNIPS/DR estimators and ``offpolicy_logs`` their
use on the logs (re-ranking each logged pool with a model): ``paperboy experiment
offpolicy`` and the nightly training guard-rail both call it. May import ``recsys.db``,
``recsys.digests`` and the loaded model of ``recsys.training.model``; the rest of the offline
engine lives in the top-level ``experiments`` package.
"""
