"""A synthetic world with known answers: topics, papers, users and a known click model.

Tests, the demo and the benchmarks need data whose right answer is known. Here every paper
has a latent topic mixture, every user a latent topic preference, and clicks are sampled
from :func:`click_probability`, so a recommender can be checked against the truth.

Generation is deterministic for a seed and vectorised with numpy: 100k users, 50k papers and
1M click events take a few seconds. Only papers and per-user strings are Python objects;
events stay in parallel numpy arrays.

How events are produced (the "feed" model). Each user is shown papers (impressions) by an
exposure policy: with probability ``TARGETED_EXPOSURE`` a paper from one of the user's topics
(topic drawn from ``user_prefs``, paper uniform among papers with that main topic), otherwise
a paper drawn uniformly at random. The user clicks each impression independently with
``click_probability``. Impressions are drawn until the user has their quota of distinct
clicked papers (``1 + Poisson(clicks_per_user - 1)``, so the mean is ``clicks_per_user``).
A click happens at a uniform time between the paper's publication and ``now``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from recsys.catalog.sources.jsonl import paper_record
from recsys.domain import Paper

# The click model: P(click | shown) = sigmoid(CLICK_SLOPE * <user_prefs, paper_mix> + CLICK_BIAS).
# A single-topic user shown a typical on-topic paper (affinity ~0.8) clicks with p ~0.97; an
# off-topic paper (affinity ~0.01) gets p ~0.003, so clicks concentrate on a user's topics.
CLICK_SLOPE = 12.0
CLICK_BIAS = -6.0
# Share of impressions the exposure policy draws from the user's own topics.
TARGETED_EXPOSURE = 0.7
# Preference mass spread evenly over all topics, so no topic is strictly impossible.
BACKGROUND_PREF = 0.05
PUBLISH_WINDOW_DAYS = 30

_SECONDS_PER_DAY = 86_400
# Each sampling round shows a user _OVERDRAW times the impressions their click rate says they
# need; a bigger value wastes work, a smaller one needs more rounds.
_OVERDRAW = 1.5
_MIN_CLICK_RATE = 0.01
_IMPRESSION_CHUNK = 1 << 19
# A user whose click probabilities are all tiny may never fill their quota; stop trying.
_MAX_SAMPLING_ROUNDS = 30
# Words per paper: two title slots, then up to four sentences with three slots each.
_TITLE_SLOTS = 2
_SENTENCE_SLOTS = 3
_MAX_SENTENCES = 4
_N_SLOTS = _TITLE_SLOTS + _SENTENCE_SLOTS * _MAX_SENTENCES


@dataclass(frozen=True)
class Topic:
    """A research topic: a name and the vocabulary its papers are written in."""

    name: str
    words: tuple[str, ...]


@dataclass
class World:
    """A generated world. Row ``i`` of each user array is user ``i``; likewise for papers.

    ``events_user``, ``events_paper`` and ``events_at`` are parallel arrays, one entry per
    click, sorted by time. ``events_at`` has dtype ``datetime64[s]`` (8 bytes an event, exact,
    printable as ISO-8601) and holds naive UTC times, since numpy has no time zones; ``now`` is
    a UTC-aware datetime, and :attr:`events_age_s` gives the same times as seconds before it.
    """

    topics: list[Topic]
    papers: list[Paper]
    paper_topics: NDArray[np.int32]
    paper_mix: NDArray[np.float32]
    user_emails: list[str]
    user_names: list[str]
    user_prefs: NDArray[np.float32]
    user_interests: list[list[str]]
    events_user: NDArray[np.int32]
    events_paper: NDArray[np.int32]
    events_at: NDArray[np.datetime64]
    now: datetime

    @property
    def n_users(self) -> int:
        """Number of users."""
        return len(self.user_emails)

    @property
    def n_papers(self) -> int:
        """Number of papers."""
        return len(self.papers)

    @property
    def events_age_s(self) -> NDArray[np.float64]:
        """Seconds from each event to ``now``: ``now - timedelta(seconds=age)`` is its time."""
        now = np.datetime64(self.now.astimezone(UTC).replace(tzinfo=None), "us")
        ages: NDArray[np.float64] = (now - self.events_at) / np.timedelta64(1, "s")
        return ages


# --- Built-in topics ---------------------------------------------------------------------
# (name, arXiv categories, vocabulary). Vocabularies barely overlap, so a bag-of-words model
# can tell topics apart; the shared research boilerplate lives in the sentence templates.
_BUILTIN_SPECS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "reinforcement learning",
        ("cs.LG", "cs.AI"),
        (
            "policy gradient", "actor-critic", "reward shaping", "Q-learning",
            "offline reinforcement learning", "exploration bonus", "Markov decision process",
            "value function", "temporal-difference learning", "model-based planning", "PPO",
            "multi-agent coordination", "sparse rewards", "world models", "Atari games",
            "continuous control", "replay buffer", "advantage estimation",
            "intrinsic motivation", "policy optimization", "Bellman operator",
            "regret bounds", "bandit feedback", "curriculum learning", "trust region",
            "behavior cloning", "sample efficiency", "MuJoCo locomotion",
            "Monte Carlo tree search", "hierarchical options",
        ),
    ),
    (
        "graph neural networks",
        ("cs.LG", "cs.SI"),
        (
            "message passing", "node classification", "link prediction", "graph convolution",
            "over-smoothing", "graph attention", "heterophily", "graph transformers",
            "molecular graphs", "knowledge graphs", "graph pooling", "spectral filters",
            "Weisfeiler-Lehman test", "expressive power", "subgraph sampling",
            "graph isomorphism", "dynamic graphs", "temporal graphs", "node embeddings",
            "citation networks", "equivariant layers", "graph rewiring", "oversquashing",
            "hypergraphs", "graph contrastive learning", "community detection",
            "adjacency matrix", "neighborhood aggregation", "GNN explainability",
            "positional encodings",
        ),
    ),
    (
        "large language models",
        ("cs.CL",),
        (
            "instruction tuning", "in-context learning", "chain-of-thought prompting",
            "long-context language models", "sparse attention", "tokenizers", "RLHF",
            "hallucination", "retrieval-augmented generation", "next-token prediction",
            "scaling laws", "KV cache", "mixture of experts", "preference optimization",
            "decoding strategies", "prompt injection", "mathematical reasoning",
            "code generation", "model alignment", "pretraining corpora",
            "parameter-efficient fine-tuning", "LoRA adapters", "speculative decoding",
            "quantized inference", "perplexity", "open-weight models", "tool use",
            "question answering", "abstractive summarization", "multilingual transfer",
        ),
    ),
    (
        "visual recognition",
        ("cs.CV",),
        (
            "object detection", "semantic segmentation", "bounding boxes",
            "convolutional backbones", "vision transformers", "image classification",
            "ImageNet", "feature pyramids", "instance segmentation", "anchor-free detectors",
            "data augmentation", "self-supervised pretraining", "depth estimation",
            "optical flow", "video understanding", "pose estimation", "point clouds",
            "3D reconstruction", "few-shot recognition", "domain adaptation", "COCO",
            "open-vocabulary detection", "visual grounding", "image retrieval",
            "keypoint matching", "occlusion handling", "small objects", "pixel-level labels",
            "neural radiance fields", "scene parsing",
        ),
    ),
    (
        "protein structure",
        ("q-bio.BM",),
        (
            "protein folding", "amino acid sequences", "residue contacts", "AlphaFold",
            "structure prediction", "binding affinity", "ligand docking",
            "molecular dynamics", "protein design", "inverse folding",
            "multiple sequence alignment", "coevolution", "side-chain packing",
            "backbone geometry", "cryo-EM maps", "enzyme engineering", "antibody design",
            "protein language models", "secondary structure", "tertiary structure",
            "disordered regions", "mutational effects", "stability prediction",
            "conformational ensembles", "binding pockets", "Rosetta energy",
            "torsion angles", "homology modelling", "PDB entries",
            "protein-protein interactions",
        ),
    ),
    (
        "quantum error correction",
        ("quant-ph",),
        (
            "surface codes", "logical qubits", "stabilizer measurements", "syndrome decoding",
            "fault tolerance", "error thresholds", "magic state distillation",
            "topological codes", "qubit decoherence", "Pauli noise", "quantum LDPC codes",
            "lattice surgery", "minimum-weight perfect matching", "physical qubits",
            "code distance", "transversal gates", "bosonic codes", "cat qubits",
            "leakage errors", "superconducting qubits", "trapped ions", "erasure conversion",
            "color codes", "decoder latency", "Clifford circuits", "logical error rates",
            "concatenated codes", "flag qubits", "quantum memory", "crosstalk",
        ),
    ),
    (
        "speech recognition",
        ("eess.AS", "cs.SD"),
        (
            "automatic speech recognition", "acoustic models", "spectrograms",
            "phoneme recognition", "speaker diarization", "CTC loss", "end-to-end ASR",
            "word error rate", "wav2vec", "voice activity detection", "speech enhancement",
            "noisy speech", "accented speech", "low-resource languages",
            "streaming transducers", "keyword spotting", "speaker verification",
            "text-to-speech", "prosody", "mel filterbanks", "conformer encoders",
            "LibriSpeech", "spoken language understanding", "code-switching",
            "pronunciation lexicons", "far-field microphones", "audio-visual speech",
            "Whisper", "utterance embeddings", "audio tokenizers",
        ),
    ),
    (
        "robot manipulation",
        ("cs.RO",),
        (
            "robotic grasping", "dexterous manipulation", "motion planning",
            "sim-to-real transfer", "tactile sensing", "robot arms",
            "trajectory optimization", "demonstrations", "teleoperation",
            "contact-rich tasks", "legged locomotion", "visuomotor policies",
            "pick-and-place", "inverse kinematics", "end-effector control",
            "mobile manipulators", "object rearrangement", "force control", "soft grippers",
            "cloth folding", "collision avoidance", "proprioception",
            "language-conditioned robots", "grasp poses", "deformable objects",
            "humanoid robots", "kinesthetic teaching", "assembly tasks", "SLAM",
            "household robots",
        ),
    ),
    (
        "differential privacy",
        ("cs.CR",),
        (
            "differential privacy", "privacy budget", "DP-SGD", "gradient clipping",
            "Gaussian mechanism", "Laplace mechanism", "membership inference",
            "privacy accounting", "Renyi divergence", "federated learning",
            "secure aggregation", "local differential privacy",
            "data reconstruction attacks", "synthetic data release", "composition theorems",
            "sensitivity analysis", "private query release", "model inversion",
            "epsilon guarantees", "privacy amplification", "shuffle model",
            "private statistics", "census data", "anonymization", "record linkage",
            "trusted curator", "noisy counts", "private histograms", "machine unlearning",
            "privacy-utility trade-off",
        ),
    ),
    (
        "recommender systems",
        ("cs.IR",),
        (
            "collaborative filtering", "matrix factorization", "implicit feedback",
            "click-through rate", "session-based recommendation", "cold-start users",
            "item embeddings", "sequential recommendation", "ranking losses",
            "two-tower retrieval", "popularity bias", "exposure bias", "offline evaluation",
            "user engagement", "negative sampling", "candidate generation",
            "news recommendation", "e-commerce", "learning to rank", "A/B tests",
            "off-policy evaluation", "conversational recommenders", "user modeling",
            "item catalogs", "explicit ratings", "MovieLens", "CTR prediction",
            "feature interactions", "fairness of exposure", "re-ranking",
        ),
    ),
    (
        "diffusion models",
        ("cs.CV", "cs.LG"),
        (
            "denoising diffusion", "score matching", "noise schedules",
            "text-to-image generation", "latent diffusion", "classifier-free guidance",
            "sampling steps", "DDIM sampler", "stochastic differential equations",
            "image synthesis", "generative priors", "consistency models", "flow matching",
            "image editing", "inpainting", "super-resolution", "video generation",
            "FID scores", "U-Net denoisers", "reverse process", "guidance scale",
            "sampler distillation", "controllable generation", "subject personalization",
            "training data memorization", "watermarking", "likelihood training",
            "discrete diffusion", "noise prediction", "prompt adherence",
        ),
    ),
    (
        "causal inference",
        ("stat.ME",),
        (
            "treatment effects", "instrumental variables", "confounding",
            "propensity scores", "potential outcomes", "causal graphs", "do-calculus",
            "randomized trials", "observational studies", "heterogeneous effects",
            "difference-in-differences", "regression discontinuity",
            "doubly robust estimators", "counterfactual prediction", "mediation analysis",
            "causal discovery", "structural equation models", "unmeasured confounding",
            "synthetic control", "average treatment effect", "identification conditions",
            "backdoor adjustment", "selection bias", "matching estimators",
            "uplift modeling", "interference", "covariate balance",
            "semiparametric efficiency", "natural experiments", "causal estimands",
        ),
    ),
    (
        "climate modeling",
        ("physics.ao-ph",),
        (
            "climate projections", "general circulation models", "precipitation extremes",
            "sea surface temperature", "atmospheric dynamics", "weather forecasting",
            "ensemble forecasts", "data assimilation", "carbon cycle", "aerosol forcing",
            "ocean heat content", "El Nino", "statistical downscaling", "reanalysis data",
            "tropical cyclones", "heatwaves", "ice sheets", "sea level rise",
            "cloud feedbacks", "radiative forcing", "convection parameterization",
            "climate emulators", "CMIP6 ensembles", "drought indices", "monsoon variability",
            "regional climate", "jet stream", "Arctic amplification", "greenhouse gases",
            "subseasonal prediction",
        ),
    ),
    (
        "cosmology",
        ("astro-ph.CO",),
        (
            "dark matter", "dark energy", "cosmic microwave background", "galaxy surveys",
            "weak lensing", "baryon acoustic oscillations", "Hubble tension",
            "redshift-space distortions", "large-scale structure", "N-body simulations",
            "cosmic inflation", "primordial non-Gaussianity", "galaxy clusters",
            "matter power spectrum", "cosmological parameters", "supernova distances",
            "reionization", "21-cm signal", "halo mass function", "neutrino masses",
            "Planck data", "gravitational lensing", "S8 tension", "modified gravity",
            "photometric redshifts", "Lambda-CDM", "cosmic shear", "cosmic voids",
            "intensity mapping", "Lyman-alpha forest",
        ),
    ),
    (
        "program analysis",
        ("cs.PL", "cs.SE"),
        (
            "static analysis", "type inference", "abstract interpretation",
            "compiler optimizations", "program synthesis", "symbolic execution", "fuzzing",
            "memory safety", "borrow checking", "intermediate representations",
            "LLVM passes", "dataflow analysis", "formal verification", "separation logic",
            "loop invariants", "automated refactoring", "bug detection", "concurrency bugs",
            "data races", "gradual typing", "JIT compilation", "register allocation",
            "code clones", "test generation", "SMT solvers", "garbage collection",
            "pointer analysis", "WebAssembly", "dependent types", "proof assistants",
        ),
    ),
    (
        "computational neuroscience",
        ("q-bio.NC",),
        (
            "spiking neurons", "neural recordings", "cortical circuits",
            "synaptic plasticity", "calcium imaging", "place cells", "grid cells",
            "neural population dynamics", "spike sorting", "brain-computer interfaces",
            "fMRI responses", "visual cortex", "dendritic computation", "Hebbian learning",
            "recurrent circuits", "neural manifolds", "decision-making tasks",
            "motor cortex", "hippocampal replay", "working memory", "predictive coding",
            "connectomics", "dopamine signals", "EEG decoding", "firing rates",
            "neuromodulation", "sensory coding", "electrophysiology", "mouse behavior",
            "attractor dynamics",
        ),
    ),
)  # fmt: skip

BUILTIN_TOPICS: tuple[Topic, ...] = tuple(Topic(name, words) for name, _, words in _BUILTIN_SPECS)
_TOPIC_CATEGORIES: dict[str, tuple[str, ...]] = {name: cats for name, cats, _ in _BUILTIN_SPECS}

# Title and sentence templates carry the generic research words shared by every topic.
_TITLE_TEMPLATES = (
    "{adj} {a} for {b}",
    "{a} via {b}",
    "Towards {adj} {a}",
    "{a} Meets {b}",
    "Revisiting {a} in {b}",
    "{adj} {a} with {b}",
    "On the {noun} of {a}",
    "Learning {a} from {b}",
    "When Does {a} Help {b}?",
    "{a}: {adj} {b} at Scale",
)
_TITLE_ADJECTIVES = (
    "Efficient", "Scalable", "Robust", "Provable", "Adaptive", "Hierarchical", "Unified",
    "Fast", "Interpretable", "Lightweight", "Principled", "Generalizable", "Data-Efficient",
    "Calibrated",
)  # fmt: skip
_TITLE_NOUNS = (
    "Robustness", "Scalability", "Limits", "Sample Complexity", "Generalization", "Role",
    "Geometry", "Stability",
)  # fmt: skip
_OPENING_SENTENCES = (
    "We propose a new approach to {a} that exploits {b}.",
    "{a} is a central problem in {b}, yet existing methods scale poorly with {c}.",
    "We study {a} in the setting of {b}.",
    "Recent work on {a} has focused on {b}, leaving {c} largely unexplored.",
    "This paper introduces a framework for {a} based on {b}.",
)
_BODY_SENTENCES = (
    "Our method combines {a} with {b} and outperforms strong baselines.",
    "Experiments on {a} benchmarks show state-of-the-art results for {b}.",
    "We prove that {a} can improve {b} under mild assumptions.",
    "Compared with prior work, our approach reduces the cost of {a} while preserving {b}.",
    "Extensive ablations highlight the role of {a} and {b}.",
    "We release code and data for {a} to support further research on {b}.",
    "Results suggest that {a} and {c} are complementary to {b}.",
    "On standard evaluations, the proposed model achieves competitive accuracy on {a}.",
)
# Words a title keeps in lower case (unless first).
_SMALL_WORDS = frozenset(
    {"a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "the", "to", "via", "with"}
)

_FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Bo", "Carmen", "Chen", "Dario", "Elena", "Emeka", "Farah",
    "Grace", "Hana", "Igor", "Ines", "Jamal", "Juno", "Kai", "Kofi", "Lena", "Luis", "Maya",
    "Mei", "Nadia", "Nikhil", "Olga", "Omar", "Priya", "Quinn", "Rafael", "Rosa", "Sami",
    "Sofia", "Tariq", "Tomas", "Uma", "Victor", "Wen", "Yara", "Yusuf", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Abe", "Adeyemi", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad",
    "Ivanova", "Jensen", "Kim", "Kowalski", "Laurent", "Li", "Mensah", "Moreau", "Nakamura",
    "Novak", "Okafor", "Olsen", "Patel", "Quispe", "Rossi", "Santos", "Schmidt", "Singh",
    "Tanaka", "Torres", "Usman", "Varga", "Wang", "Weber", "Xu", "Yilmaz", "Zhang",
)  # fmt: skip


# --- Public API -----------------------------------------------------------------------------
def generate_world(
    n_users: int,
    n_papers: int,
    *,
    n_topics: int = 12,
    clicks_per_user: int = 8,
    seed: int = 0,
    now: datetime,
) -> World:
    """Generate a synthetic world of topics, papers, users and click events.

    Parameters
    ----------
    n_users : int
        Number of users (0 or more).
    n_papers : int
        Number of papers (1 or more).
    n_topics : int, default 12
        Number of topics, taken in order from :data:`BUILTIN_TOPICS`; at most its length.
    clicks_per_user : int, default 8
        Mean number of distinct papers each user clicks (at least 1 per user when positive).
    seed : int, default 0
        Seed; the same arguments always give the same world.
    now : datetime
        The moment the world is observed. Papers are published in the 30 days before it and
        clicks happen before it. A naive datetime is taken to be UTC.

    Returns
    -------
    World
        The world; see the module docstring for how events are sampled.

    Raises
    ------
    ValueError
        If a size is out of range or ``n_topics`` exceeds the built-in topics.
    """
    _check_sizes(n_users, n_papers, n_topics, clicks_per_user)
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    # Independent streams per part: changing n_users leaves the papers unchanged.
    paper_rng, user_rng, event_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    topics = list(BUILTIN_TOPICS[:n_topics])
    paper_topics, paper_mix = _paper_topic_mix(paper_rng, n_papers, n_topics)
    age_s = paper_rng.integers(0, PUBLISH_WINDOW_DAYS * _SECONDS_PER_DAY, n_papers)
    papers = _write_papers(paper_rng, topics, paper_topics, paper_mix, age_s, now)
    user_prefs = _user_prefs(user_rng, n_users, n_topics)
    user_names = _person_names(user_rng, n_users)
    user_interests = _user_interests(user_rng, topics, user_prefs)
    events_user, events_paper, events_at = _sample_events(
        event_rng, user_prefs, paper_mix, paper_topics, age_s, clicks_per_user, now
    )
    return World(
        topics=topics,
        papers=papers,
        paper_topics=paper_topics,
        paper_mix=paper_mix,
        user_emails=_user_emails(n_users),
        user_names=user_names,
        user_prefs=user_prefs,
        user_interests=user_interests,
        events_user=events_user,
        events_paper=events_paper,
        events_at=events_at,
        now=now,
    )


def click_probability(
    world: World, users: NDArray[np.int_], papers: NDArray[np.int_]
) -> NDArray[np.float64]:
    """The known click model: the probability that a user clicks a paper they are shown.

    ``sigmoid(CLICK_SLOPE * <user_prefs[u], paper_mix[p]> + CLICK_BIAS)``.

    Parameters
    ----------
    world : World
        The world the indices refer to.
    users, papers : NDArray[np.int_]
        User and paper row indices; they broadcast against each other, so
        ``users[:, None]`` with ``papers[None, :]`` gives a full matrix.

    Returns
    -------
    NDArray[np.float64]
        Click probabilities in the broadcast shape.
    """
    return _click_probability(world.user_prefs, world.paper_mix, users, papers)


def write_world(world: World, out_dir: Path) -> dict[str, Path]:
    """Write the world as the files an operator would ingest.

    ``papers.jsonl``: one ``{"id", "title", "abstract", "authors", "categories",
    "published", "url"}`` object per line. ``users.csv``: ``email,name,interests`` with
    interests joined by ``;``. ``events.csv``: ``user_email,paper_id,kind,timestamp`` with
    kind ``click`` and ISO-8601 UTC timestamps. Each file is written to a temporary name and
    renamed, so a crash never leaves a half-written file under the final name.

    Parameters
    ----------
    world : World
        The world to write.
    out_dir : Path
        Directory to write into; created if missing.

    Returns
    -------
    dict[str, Path]
        Paths keyed ``"papers"``, ``"users"`` and ``"events"``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "papers": out_dir / "papers.jsonl",
        "users": out_dir / "users.csv",
        "events": out_dir / "events.csv",
    }
    _write_atomic(
        paths["papers"],
        (json.dumps(paper_record(p), ensure_ascii=False) + "\n" for p in world.papers),
    )
    _write_csv_atomic(paths["users"], ("email", "name", "interests"), _user_rows(world))
    _write_csv_atomic(
        paths["events"], ("user_email", "paper_id", "kind", "timestamp"), _event_rows(world)
    )
    return paths


# --- Validation ---------------------------------------------------------------------------
def _check_sizes(n_users: int, n_papers: int, n_topics: int, clicks_per_user: int) -> None:
    if n_users < 0:
        raise ValueError(f"n_users must be >= 0, got {n_users}")
    if n_papers < 1:
        raise ValueError(f"n_papers must be >= 1, got {n_papers}")
    if not 1 <= n_topics <= len(BUILTIN_TOPICS):
        raise ValueError(
            f"n_topics must be between 1 and {len(BUILTIN_TOPICS)} (the built-in topics), "
            f"got {n_topics}"
        )
    if clicks_per_user < 0:
        raise ValueError(f"clicks_per_user must be >= 0, got {clicks_per_user}")


# --- Papers -------------------------------------------------------------------------------
def _paper_topic_mix(
    rng: np.random.Generator, n_papers: int, n_topics: int
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Main topic and a two-topic mixture per paper (main weight 0.6-0.95)."""
    # Round-robin then shuffle: topics get equal shares, so none is empty once
    # n_papers >= n_topics (the exposure policy relies on that).
    main = rng.permutation(np.arange(n_papers) % n_topics).astype(np.int32)
    if n_topics == 1:
        return main, np.ones((n_papers, 1), dtype=np.float32)
    secondary = (main + rng.integers(1, n_topics, n_papers)) % n_topics
    weight = rng.uniform(0.6, 0.95, n_papers).astype(np.float32)
    mix = np.zeros((n_papers, n_topics), dtype=np.float32)
    rows = np.arange(n_papers)
    mix[rows, main] = weight
    mix[rows, secondary] = 1.0 - weight
    return main, mix


def _write_papers(
    rng: np.random.Generator,
    topics: Sequence[Topic],
    main: NDArray[np.int32],
    mix: NDArray[np.float32],
    age_s: NDArray[np.int64],
    now: datetime,
) -> list[Paper]:
    """Papers whose title and abstract words are drawn from their topic mixture."""
    slots = _slot_words(rng, topics, main, mix)
    vocab = [w for t in topics for w in t.words]
    titles = _unique_titles(_titles(rng, slots, [_title_case(w) for w in vocab]))
    abstracts = _abstracts(rng, slots, vocab)
    authors = _paper_authors(rng, main, len(topics))
    categories = _paper_categories(topics, main, mix)
    base = now.replace(microsecond=0)
    return [
        Paper(
            title=titles[i],
            abstract=abstracts[i],
            authors=authors[i],
            categories=categories[i],
            published=base - timedelta(seconds=int(age)),
            url=f"https://papers.example.org/synth-{i:06d}",
            external_id=f"synth-{i:06d}",
            source="synth",
            line=i + 1,
        )
        for i, age in enumerate(age_s.tolist())
    ]


def _titles(
    rng: np.random.Generator, slots: Sequence[Sequence[int]], title_vocab: Sequence[str]
) -> list[str]:
    """A title per paper from a template, filled with its first two slot phrases."""
    n = len(slots)
    templates = rng.integers(0, len(_TITLE_TEMPLATES), n).tolist()
    adjectives = rng.integers(0, len(_TITLE_ADJECTIVES), n).tolist()
    nouns = rng.integers(0, len(_TITLE_NOUNS), n).tolist()
    return [
        _TITLE_TEMPLATES[templates[i]].format(
            adj=_TITLE_ADJECTIVES[adjectives[i]],
            noun=_TITLE_NOUNS[nouns[i]],
            a=title_vocab[words[0]],
            b=title_vocab[words[1]],
        )
        for i, words in enumerate(slots)
    ]


def _unique_titles(titles: list[str]) -> list[str]:
    """Number repeated titles ("..., Part 2"): every synthetic paper must survive ingestion's
    title de-duplication, or the world and the database would disagree on what exists."""
    seen: dict[str, int] = {}
    out = []
    for title in titles:
        key = title.casefold()
        seen[key] = seen.get(key, 0) + 1
        out.append(title if seen[key] == 1 else f"{title}, Part {seen[key]}")
    return out


def _abstracts(
    rng: np.random.Generator, slots: Sequence[Sequence[int]], vocab: Sequence[str]
) -> list[str]:
    """An opening sentence and 1-3 distinct body sentences per paper, from the later slots."""
    n = len(slots)
    openings = rng.integers(0, len(_OPENING_SENTENCES), n).tolist()
    # Distinct body templates per paper: the first 1-3 of a random permutation.
    bodies = np.argsort(rng.random((n, len(_BODY_SENTENCES))), axis=1)[:, :3].tolist()
    n_body = rng.integers(1, _MAX_SENTENCES, n).tolist()
    out = []
    for i, words in enumerate(slots):
        templates = [_OPENING_SENTENCES[openings[i]]]
        templates += [_BODY_SENTENCES[j] for j in bodies[i][: n_body[i]]]
        out.append(_abstract(templates, [vocab[k] for k in words[_TITLE_SLOTS:]]))
    return out


def _slot_words(
    rng: np.random.Generator,
    topics: Sequence[Topic],
    main: NDArray[np.int32],
    mix: NDArray[np.float32],
) -> list[list[int]]:
    """Per paper, ``_N_SLOTS`` indices into the topics' concatenated vocabularies.

    Each slot's topic is drawn from the paper's mixture, so most words come from its main topic.
    """
    n = len(main)
    slot_topic = _draw_from_cdf(rng, _row_cdf(mix), _N_SLOTS)
    slot_topic[:, 0] = main  # the title's first phrase always names the main topic
    sizes = np.array([len(t.words) for t in topics])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pick = (rng.random((n, _N_SLOTS)) * sizes[slot_topic]).astype(np.int64)
    rows: list[list[int]] = (offsets[slot_topic] + pick).tolist()
    return rows


def _row_cdf(weights: NDArray[np.floating]) -> NDArray[np.float64]:
    """Each row's cumulative distribution (rows need not be normalised)."""
    cdf = np.cumsum(weights, axis=1, dtype=np.float64)
    cdf /= cdf[:, -1:]
    return cdf


def _draw_from_cdf(rng: np.random.Generator, cdf: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """``k`` column indices per row, drawn by inverting each row's CDF."""
    u = rng.random((cdf.shape[0], k))
    drawn = (cdf[:, None, :] <= u[:, :, None]).sum(axis=2)
    # Round-off can leave the last CDF value a hair below 1; never index past the end.
    return np.minimum(drawn, cdf.shape[1] - 1)


def _abstract(templates: Sequence[str], words: Sequence[str]) -> str:
    sentences = []
    for j, template in enumerate(templates):
        a, b, c = words[j * _SENTENCE_SLOTS : (j + 1) * _SENTENCE_SLOTS]
        sentence = template.format(a=a, b=b, c=c)
        sentences.append(sentence[0].upper() + sentence[1:])
    return " ".join(sentences)


def _title_case(phrase: str) -> str:
    """Title-case a phrase, keeping acronyms (``RLHF``, ``wav2vec`` stays) and small words."""
    out = []
    for k, word in enumerate(phrase.split(" ")):
        if any(ch.isupper() for ch in word) or (k > 0 and word in _SMALL_WORDS):
            out.append(word)
        else:
            out.append("-".join(part[:1].upper() + part[1:] for part in word.split("-")))
    return " ".join(out)


def _paper_authors(
    rng: np.random.Generator, main: NDArray[np.int32], n_topics: int
) -> list[tuple[str, ...]]:
    """1-3 authors per paper from a pool where each author works on one home topic.

    Authors are topic-specific so author features carry signal, as they do on arXiv.
    """
    n = len(main)
    pool = len(_FIRST_NAMES) * len(_LAST_NAMES)
    per_topic = pool // n_topics
    # Author k's home topic is k % n_topics.
    idx = main[:, None] + n_topics * rng.integers(0, per_topic, (n, 3))
    counts = rng.integers(1, 4, n).tolist()
    names = _pool_names(idx.ravel()).reshape(n, 3).tolist()
    return [tuple(dict.fromkeys(row[:c])) for row, c in zip(names, counts, strict=True)]


def _pool_names(idx: NDArray[np.int64]) -> NDArray[np.str_]:
    """Distinct names for pool indices below ``len(_FIRST_NAMES) * len(_LAST_NAMES)``."""
    first = np.array(_FIRST_NAMES)[idx % len(_FIRST_NAMES)]
    last = np.array(_LAST_NAMES)[idx // len(_FIRST_NAMES) % len(_LAST_NAMES)]
    return np.char.add(np.char.add(first, " "), last)


def _paper_categories(
    topics: Sequence[Topic], main: NDArray[np.int32], mix: NDArray[np.float32]
) -> list[tuple[str, ...]]:
    """The main topic's categories, plus a strong secondary topic's primary category."""
    n = len(main)
    second = np.argsort(-mix, axis=1, kind="stable")[:, 1] if mix.shape[1] > 1 else main
    strong = mix[np.arange(n), second] >= 0.3
    cats = [_TOPIC_CATEGORIES[t.name] for t in topics]
    return [
        tuple(dict.fromkeys(cats[m] + (cats[s][:1] if st else ())))
        for m, s, st in zip(main.tolist(), second.tolist(), strong.tolist(), strict=True)
    ]


# --- Users --------------------------------------------------------------------------------
def _user_prefs(rng: np.random.Generator, n_users: int, n_topics: int) -> NDArray[np.float32]:
    """Latent interests: 1-3 main topics with decreasing weights plus a thin background."""
    n_main = rng.choice([1, 2, 3], size=n_users, p=[0.35, 0.4, 0.25])
    chosen = np.argsort(rng.random((n_users, n_topics)), axis=1)[:, :3]
    weights = -np.sort(-rng.gamma(2.0, 1.0, (n_users, 3)), axis=1)
    weights[np.arange(3)[None, :] >= np.minimum(n_main, n_topics)[:, None]] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    prefs = np.full((n_users, n_topics), BACKGROUND_PREF / n_topics)
    rows = np.repeat(np.arange(n_users), chosen.shape[1])
    prefs[rows, chosen.ravel()] += (1.0 - BACKGROUND_PREF) * weights[:, : chosen.shape[1]].ravel()
    return prefs.astype(np.float32)


def _user_interests(
    rng: np.random.Generator, topics: Sequence[Topic], prefs: NDArray[np.float32]
) -> list[list[str]]:
    """Keywords a user would type: 2-3 from their top topic, 1 from the second if strong."""
    n_users: int = prefs.shape[0]
    order = np.argsort(-prefs, axis=1, kind="stable")[:, :2]
    top, second = order[:, 0], order[:, -1]
    use_second = prefs[np.arange(n_users), second] >= 0.2
    n_top = rng.integers(2, 4, size=n_users)
    # Distinct picks without a per-user shuffle: a random start and a stride below a third
    # of the vocabulary, so three steps never wrap onto an earlier pick.
    start: list[list[float]] = rng.random((n_users, 2)).tolist()
    stride: list[float] = rng.random(n_users).tolist()
    words = [t.words for t in topics]
    out = []
    for i in range(n_users):
        t, s = int(top[i]), int(second[i])
        size = len(words[t])
        first, step = int(start[i][0] * size), 1 + int(stride[i] * (size // 3 - 1))
        chosen = [words[t][(first + k * step) % size] for k in range(int(n_top[i]))]
        if use_second[i] and s != t:
            chosen.append(words[s][int(start[i][1] * len(words[s]))])
        out.append(chosen)
    return out


def _user_emails(n_users: int) -> list[str]:
    width = max(4, len(str(max(n_users - 1, 0))))
    return [f"user{i:0{width}d}@example.org" for i in range(n_users)]


def _person_names(rng: np.random.Generator, n: int) -> list[str]:
    idx = rng.integers(0, len(_FIRST_NAMES) * len(_LAST_NAMES), n)
    return _pool_names(idx).tolist()


# --- Events -------------------------------------------------------------------------------
def _click_probability(
    prefs: NDArray[np.float32],
    mix: NDArray[np.float32],
    users: NDArray[np.int_],
    papers: NDArray[np.int_],
) -> NDArray[np.float64]:
    affinity = np.einsum("...k,...k->...", prefs[users], mix[papers], dtype=np.float64)
    result: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-(CLICK_SLOPE * affinity + CLICK_BIAS)))
    return result


def _sample_events(
    rng: np.random.Generator,
    prefs: NDArray[np.float32],
    mix: NDArray[np.float32],
    paper_topics: NDArray[np.int32],
    age_s: NDArray[np.int64],
    clicks_per_user: int,
    now: datetime,
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.datetime64]]:
    """Clicks from the feed model in the module docstring, sorted by time."""
    n_users, n_papers = prefs.shape[0], mix.shape[0]
    quota = np.zeros(n_users, dtype=np.int64)
    if clicks_per_user > 0:
        quota += 1 + rng.poisson(clicks_per_user - 1, n_users)
    np.minimum(quota, n_papers, out=quota)  # clicks are on distinct papers
    users, papers = _sample_clicks(rng, prefs, mix, paper_topics, quota)
    # A click falls uniformly between the paper's publication and now.
    ago = (rng.random(len(papers)) * age_s[papers]).astype(np.int64)
    at = np.datetime64(now.replace(tzinfo=None, microsecond=0), "s") - ago.astype("m8[s]")
    order = np.argsort(at, kind="stable")
    return users[order].astype(np.int32), papers[order].astype(np.int32), at[order]


def _sample_clicks(
    rng: np.random.Generator,
    prefs: NDArray[np.float32],
    mix: NDArray[np.float32],
    paper_topics: NDArray[np.int32],
    quota: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Show papers in rounds until every user has ``quota`` distinct clicked papers."""
    feed = _Feed(prefs, mix, paper_topics)
    n_users = len(quota)
    shown, clicks = np.zeros(n_users), np.zeros(n_users)
    filled = quota == 0
    final_u: list[NDArray[np.int64]] = []
    final_p: list[NDArray[np.int64]] = []
    users = papers = np.zeros(0, dtype=np.int64)  # clicks of users still filling their quota
    for _ in range(_MAX_SAMPLING_ROUNDS):
        active = np.flatnonzero(~filled)
        if active.size == 0:
            break
        remaining = quota[active] - np.bincount(users, minlength=n_users)[active]
        # Size each user's batch from their click rate so far (Laplace-smoothed): a fixed
        # batch leaves a long tail of rounds for users who rarely click.
        rate = np.maximum((clicks[active] + 1) / (shown[active] + 2), _MIN_CLICK_RATE)
        n_show = np.ceil(remaining * _OVERDRAW / rate).astype(np.int64)
        new_users, new_papers = feed.show(rng, np.repeat(active, n_show))
        shown[active] += n_show
        clicks += np.bincount(new_users, minlength=n_users)
        users, papers = _first_distinct_clicks(
            np.concatenate([users, new_users]),
            np.concatenate([papers, new_papers]),
            quota,
            len(mix),
        )
        # Set finished users' clicks aside, so later rounds only re-sort the unfinished.
        just_filled = np.bincount(users, minlength=n_users) >= quota
        done = just_filled[users]
        final_u.append(users[done])
        final_p.append(papers[done])
        users, papers = users[~done], papers[~done]
        filled |= just_filled
    return np.concatenate([*final_u, users]), np.concatenate([*final_p, papers])


class _Feed:
    """The exposure policy plus the click model: who is shown what, and what they click."""

    def __init__(
        self, prefs: NDArray[np.float32], mix: NDArray[np.float32], paper_topics: NDArray[np.int32]
    ) -> None:
        self.prefs = prefs
        self.mix = mix
        self.pref_cdf = _row_cdf(prefs)
        self.by_topic = np.argsort(paper_topics, kind="stable")
        self.count = np.bincount(paper_topics, minlength=prefs.shape[1])
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]])

    def show(
        self, rng: np.random.Generator, users: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Show each listed user one paper; return the (user, paper) pairs clicked."""
        out_users, out_papers = [], []
        # Chunks bound the (impressions, n_topics) temporaries to a few tens of MB.
        for lo in range(0, users.size, _IMPRESSION_CHUNK):
            chunk = users[lo : lo + _IMPRESSION_CHUNK]
            papers = self._expose(rng, chunk)
            p = _click_probability(self.prefs, self.mix, chunk, papers)
            clicked = rng.random(chunk.size) < p
            out_users.append(chunk[clicked])
            out_papers.append(papers[clicked])
        if not out_users:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(out_users), np.concatenate(out_papers)

    def _expose(self, rng: np.random.Generator, users: NDArray[np.int64]) -> NDArray[np.int64]:
        n_papers = len(self.by_topic)
        topic = _draw_from_cdf(rng, self.pref_cdf[users], 1)[:, 0]
        count = self.count[topic]
        offset = np.minimum((rng.random(users.size) * count).astype(np.int64), count - 1)
        in_topic = self.by_topic[np.clip(self.start[topic] + offset, 0, n_papers - 1)]
        uniform = rng.integers(0, n_papers, users.size)
        # A topic without papers (only when n_papers < n_topics) falls back to uniform.
        targeted = (rng.random(users.size) < TARGETED_EXPOSURE) & (count > 0)
        return np.where(targeted, in_topic, uniform)


def _first_distinct_clicks(
    users: NDArray[np.int64], papers: NDArray[np.int64], quota: NDArray[np.int64], n_papers: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Drop repeat clicks on a paper and each user's clicks beyond their quota.

    Keeps the earliest drawn clicks, so earlier rounds are never undone. Returns the clicks
    grouped by user, in draw order within a user.
    """
    _, first = np.unique(users * n_papers + papers, return_index=True)
    first.sort()
    users, papers = users[first], papers[first]
    order = np.argsort(users, kind="stable")
    users, papers = users[order], papers[order]
    rank = np.arange(users.size) - np.searchsorted(users, users, side="left")
    keep = rank < quota[users]
    return users[keep], papers[keep]


# --- Writing ------------------------------------------------------------------------------
def _user_rows(world: World) -> Iterable[tuple[str, str, str]]:
    return zip(
        world.user_emails,
        world.user_names,
        (";".join(words) for words in world.user_interests),
        strict=True,
    )


def _event_rows(world: World) -> Iterable[tuple[str, str, str, str]]:
    emails = np.array(world.user_emails, dtype=object)[world.events_user]
    ids = np.array([p.external_id for p in world.papers], dtype=object)[world.events_paper]
    stamps = np.char.add(np.datetime_as_string(world.events_at, unit="s"), "+00:00")
    return zip(emails.tolist(), ids.tolist(), ["click"] * len(emails), stamps.tolist(), strict=True)


def _write_atomic(path: Path, chunks: Iterable[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.writelines(chunks)
    os.replace(tmp, path)


def _write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)
