"""Recommender components behind one small contract (see ``base.Component``).

``COMPONENTS`` lists every component class; ``load_component`` finds them here by ``name``.
"""

from recsys.recommender.als import AlsRidgeMap
from recsys.recommender.base import (
    Component,
    PaperBlock,
    TrainingSnapshot,
    UserBlock,
    load_component,
)
from recsys.recommender.content import ContentProfile
from recsys.recommender.hybrid import Hybrid
from recsys.recommender.lightfm_component import LightFMComponent
from recsys.recommender.linear import PerUserLinear
from recsys.recommender.popularity import PopularityPrior

# Register a new component by adding its class here (its ``name`` must be unique).
COMPONENTS: tuple[type[Component], ...] = (
    ContentProfile,
    PerUserLinear,
    AlsRidgeMap,
    LightFMComponent,
    PopularityPrior,
    Hybrid,
)

__all__ = [
    "COMPONENTS",
    "AlsRidgeMap",
    "Component",
    "ContentProfile",
    "Hybrid",
    "LightFMComponent",
    "PaperBlock",
    "PerUserLinear",
    "PopularityPrior",
    "TrainingSnapshot",
    "UserBlock",
    "load_component",
]
