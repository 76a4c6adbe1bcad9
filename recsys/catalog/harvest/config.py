"""The sources file: which outside paper sources to harvest, as an operator lists them.

A TOML file named by ``PAPERBOY_SOURCES``, one ``[[source]]`` table per source::

    [[source]]
    name = "arxiv-cs"
    kind = "arxiv-oai"
    url = "https://oaipmh.arxiv.org/oai"   # any OAI-PMH base URL
    sets = ["cs", "stat"]

Every source has a ``name`` (unique; it keys the source's state in the database), a
``kind`` and a base ``url`` with a default per kind (override it for mirrors and tests);
the other fields depend on the kind. Validated by pydantic; an error names the file, the
source and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from recsys.settings import Settings

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class SourcesError(ValueError):
    """A sources file that cannot be used; the message names the file, source and field."""


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    # How far back the first run reaches, before the source has a watermark.
    first_days: int = Field(default=3, ge=1, le=3650)


class ArxivOaiSource(_Source):
    """arXiv's OAI-PMH interface: ``ListRecords`` in the ``arXiv`` metadata format."""

    kind: Literal["arxiv-oai"]
    url: str = "https://oaipmh.arxiv.org/oai"
    sets: list[str] = Field(min_length=1)
    # arXiv answers a busy harvester with 503 + Retry-After; this is the least pause anyway.
    min_interval_s: float = Field(default=1.0, ge=0)


class ArxivApiSource(_Source):
    """The arXiv Atom query API: newest submissions matching ``query`` first."""

    kind: Literal["arxiv-api"]
    url: str = "https://export.arxiv.org/api/query"
    query: str = Field(min_length=1)
    page_size: int = Field(default=100, ge=1, le=2000)
    max_results: int = Field(default=1000, ge=1)  # per run
    min_interval_s: float = Field(default=3.0, ge=0)  # arXiv asks for 3 s between calls


class RssSource(_Source):
    """An RSS 2.0 or Atom feed: arXiv's daily feeds or a journal's."""

    kind: Literal["rss"]
    url: str = Field(min_length=1)
    min_interval_s: float = Field(default=0.0, ge=0)


class BiorxivSource(_Source):
    """The bioRxiv / medRxiv ``details`` API: preprints posted in a date interval."""

    kind: Literal["biorxiv"]
    url: str = "https://api.biorxiv.org"
    server: Literal["biorxiv", "medrxiv"] = "biorxiv"
    category: str | None = None  # e.g. "neuroscience"; all categories when unset
    min_interval_s: float = Field(default=1.0, ge=0)


SourceConfig = Annotated[
    ArxivOaiSource | ArxivApiSource | RssSource | BiorxivSource, Field(discriminator="kind")
]
KINDS = ("arxiv-oai", "arxiv-api", "rss", "biorxiv")
_ADAPTER: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)


def configured_sources(settings: Settings) -> list[SourceConfig]:
    """The sources in the file ``PAPERBOY_SOURCES`` names; SourcesError when it names none."""
    if settings.sources is None:
        raise SourcesError(
            "PAPERBOY_SOURCES is not set: name a TOML file listing the sources to harvest "
            "(see docs/sources.md)"
        )
    return load_sources(settings.sources)


def load_sources(path: Path) -> list[SourceConfig]:
    """Read and validate the sources file at ``path``.

    Raises
    ------
    SourcesError
        For a missing or unreadable file, invalid TOML, a source with a missing, unknown or
        invalid field, or two sources with one name.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourcesError(f"{path}: cannot read the sources file: {exc.strerror}") from None
    return parse_sources(text, str(path))


def parse_sources(text: str, origin: str) -> list[SourceConfig]:
    """Validate the TOML ``text`` of a sources file; ``origin`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourcesError(f"{origin}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"source"})
    if unknown:
        raise SourcesError(f"{origin}: unknown top-level key {unknown[0]!r} (expected [[source]])")
    tables = data.get("source", [])
    if not isinstance(tables, list):
        raise SourcesError(f"{origin}: 'source' must be an array of tables ([[source]])")
    sources = [_source(table, number, origin) for number, table in enumerate(tables, start=1)]
    _check_unique(sources, origin)
    return sources


def _source(table: Any, number: int, origin: str) -> SourceConfig:
    label = _label(table, number)
    if isinstance(table, dict) and table.get("kind") not in KINDS:
        kind = table.get("kind")
        reason = "missing" if kind is None else f"{kind!r} is not one of {', '.join(KINDS)}"
        raise SourcesError(f"{origin}: {label}: field 'kind': {reason}")
    try:
        return _ADAPTER.validate_python(table)
    except ValidationError as exc:
        raise SourcesError(f"{origin}: {label}: {_first_problem(exc)}") from None


def _label(table: Any, number: int) -> str:
    name = table.get("name") if isinstance(table, dict) else None
    return f"source {name!r} (#{number})" if isinstance(name, str) else f"source #{number}"


def _first_problem(exc: ValidationError) -> str:
    # The discriminated union prefixes each location with the kind; the field is the rest.
    error = exc.errors()[0]
    where = [str(part) for part in error["loc"] if str(part) not in KINDS]
    field = ".".join(where) or "(table)"
    return f"field {field!r}: {error['msg']}"


def _check_unique(sources: list[SourceConfig], origin: str) -> None:
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise SourcesError(f"{origin}: source {source.name!r}: field 'name': used twice")
        seen.add(source.name)
