"""Recommender components behind one small contract (see ``base.Component``).

``COMPONENTS`` lists every component class; ``load_component`` finds them here by ``name``.
"""

from recsys.recommender.base import (
    Component,
    PaperBlock,
    TrainingSnapshot,
    UserBlock,
    load_component,
)
from recsys.recommender.content import ContentProfile

# Register a new component by adding its class here (its ``name`` must be unique).
COMPONENTS: tuple[type[Component], ...] = (ContentProfile,)

__all__ = [
    "COMPONENTS",
    "Component",
    "ContentProfile",
    "PaperBlock",
    "TrainingSnapshot",
    "UserBlock",
    "load_component",
]
