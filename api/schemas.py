"""Request and response bodies, one family per entity (``Create`` in, ``Public`` out)."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

InterestKind = Literal["keyword", "author", "category", "text"]
EventKind = Literal["click", "more", "less"]
Frequency = Literal["daily", "weekdays", "weekly"]
SubscriberStatus = Literal["pending", "active", "paused", "unsubscribed"]
MAX_LIBRARY_CHARS = 2_000_000
# Ids are 64-bit in PostgreSQL (and SQLite), but a JSON number above 2**53 is not exact in
# most clients (RFC 7493): schemathesis sent 2**63 - 1 written as a double, i.e. 2**63, and
# the API refused what its own schema allowed. No table comes near 2**53 rows, so a larger
# number is no id of ours; it is refused rather than passed to the driver.
MAX_ID = 2**53 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
# What recsys.subscribers.accounts.normalise_email accepts, spaces around it included, so
# the schema promises no address the API then refuses.
# \x85 spelled out: Python's \s (which the API checks with) counts it as space, JSON
# Schema's ECMA-262 \s does not, so a schema-valid address could hold one.
EMAIL_PATTERN = (
    r"^\s*[^@\s<>\x00-\x1f\x7f\x85]+@[^@\s<>\x00-\x1f\x7f\x85]+\.[^@\s<>\x00-\x1f\x7f\x85]+\s*$"
)


def _no_lone_surrogate(value: str) -> str:
    # JSON may escape half of a UTF-16 pair ("\ud800"); Python keeps it, and then no
    # database can store it: a 500 at commit instead of a 422 naming the field.
    if _SURROGATE.search(value):
        raise ValueError("holds a lone surrogate (\\ud800-\\udfff), which is not text")
    return value


def _no_bool(value: object) -> object:
    # JSON true and false are no numbers (JSON Schema's "integer" excludes them), but
    # pydantic reads them as 1 and 0: a sign-up with "send_hour": false was accepted.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# An integer from a JSON body: 7 and 7.0, never true or false.
Int = Annotated[int, BeforeValidator(_no_bool)]
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_no_bool)]

# Text from a JSON request body: a str that can be stored.
Text = Annotated[str, AfterValidator(_no_lone_surrogate)]


# What recsys.subscribers.accounts refuses, said in the schema as well, so that a client (and
# schemathesis) can tell a valid request before sending it. Validation stays in the domain
# code, which names the field; these only describe it (a schema looser than the validation
# promised requests the API then refused).
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
# One line: no control character nor any line break str.splitlines() knows.
ONE_LINE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]*$"
# Form text areas: split into lines and words first, so only the controls that are not
# white space are refused.
FORM_TEXT_PATTERN = r"^[^\x00-\x08\x0e-\x1b\x7f]*$"
# Some text besides white space.
NOT_BLANK_PATTERN = f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$"


@cache
def timezone_enum() -> list[str]:
    """The IANA time zone names this machine knows: what the domain's ZoneInfo accepts."""
    return sorted(available_timezones())


def _timezones(schema: dict[str, Any]) -> None:
    # A callable, so the list is read when a schema is built, not when this is imported.
    schema["enum"] = timezone_enum()


OneLine = Annotated[Text, Field(json_schema_extra={"pattern": ONE_LINE_PATTERN})]
TimeZone = Annotated[Text, Field(json_schema_extra=_timezones)]


class ModelHealth(BaseModel):
    version: str
    trained_at: str | None
    age_hours: float | None


class SourceHealth(BaseModel):
    name: str
    last_status: str | None
    last_finished_at: str | None
    last_error: str | None


class HealthPublic(BaseModel):
    status: Literal["ok", "error"]
    database: str
    # What an operator checks next; none of them makes the API unhealthy on its own (a load
    # balancer should not take the API out because the broker or a source is down).
    broker: str | None = None
    model: ModelHealth | None = None
    sources: list[SourceHealth] = []


class LivePublic(BaseModel):
    status: Literal["ok"]


class PaperPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    abstract: str
    authors: list[str]
    categories: list[str]
    published: datetime | None
    url: str
    arxiv_id: str | None
    doi: str | None
    created_at: datetime


class PapersPublic(BaseModel):
    items: list[PaperPublic]
    count: int


class InterestCreate(BaseModel):
    kind: InterestKind
    value: Text = Field(
        min_length=1, max_length=2000, json_schema_extra={"pattern": NOT_BLANK_PATTERN}
    )


class InterestPublic(InterestCreate):
    model_config = ConfigDict(from_attributes=True)


class UserCreate(BaseModel):
    email: Text = Field(max_length=320, json_schema_extra={"pattern": EMAIL_PATTERN})
    name: OneLine | None = Field(default=None, max_length=200)
    timezone: TimeZone = Field(default="UTC", max_length=64)
    digest_size: Int = Field(default=10, ge=1, le=50)
    interests: list[InterestCreate] = Field(default_factory=list, max_length=100)


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str | None
    status: str
    timezone: str
    digest_size: int
    interests: list[InterestPublic]
    next_digest_at: datetime | None
    created_at: datetime


class UsersPublic(BaseModel):
    items: list[UserPublic]
    count: int


class EventCreate(BaseModel):
    user_id: Id
    paper_id: Id
    kind: EventKind


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    paper_id: int
    kind: str
    digest_id: int | None
    created_at: datetime


class PaperLink(BaseModel):
    """The data signed into a click, more or less link: user, paper, digest.

    Ids are bounded even though signed: a link signed by a retired key or by an operator's
    script must not make the database driver fail on an id no row can have.
    """

    u: Id
    p: Id
    d: Id | None = None


class UserLink(BaseModel):
    """The data signed into a link for one subscriber: the user and their sign-up time."""

    u: Id
    c: int | None = None


# Self-service: sign-up and the subscriber's own settings (signed link, no API key) ----------


class SignUpCreate(BaseModel):
    email: Text = Field(max_length=320, json_schema_extra={"pattern": EMAIL_PATTERN})
    name: OneLine | None = Field(default=None, max_length=200)
    timezone: TimeZone = Field(default="UTC", max_length=64)
    send_hour: Int = Field(default=7, ge=0, le=23)
    frequency: Frequency = "daily"
    digest_size: Int = Field(default=10, ge=1, le=50)
    interests: list[InterestCreate] = Field(default_factory=list, max_length=100)
    seeds: list[OneLine] = Field(
        default_factory=list,
        max_length=100,
        description="Seed papers: arXiv ids or URLs, DOIs or titles.",
    )
    library: Text | None = Field(
        default=None,
        max_length=MAX_LIBRARY_CHARS,
        description="A BibTeX file or a Zotero CSL-JSON export, as text.",
    )


class SignUpAccepted(BaseModel):
    """Always the same answer, so sign-up never tells who is subscribed."""

    detail: str


class SeedPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    url: str


class SubscriberPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    email: str
    name: str | None
    status: str
    timezone: str
    send_hour: int
    frequency: str
    digest_size: int
    interests: list[InterestPublic]
    seeds: list[SeedPublic]
    next_digest_at: datetime | None
    confirmed_at: datetime | None
    created_at: datetime


class SubscriberUpdate(BaseModel):
    """Fields left out stay as they are; ``interests`` replaces the whole list."""

    name: OneLine | None = Field(default=None, max_length=200)
    timezone: TimeZone | None = Field(default=None, max_length=64)
    send_hour: Int | None = Field(default=None, ge=0, le=23)
    frequency: Frequency | None = None
    digest_size: Int | None = Field(default=None, ge=1, le=50)
    interests: list[InterestCreate] | None = Field(default=None, max_length=100)
    add_seeds: list[Text] = Field(default_factory=list, max_length=100)
    remove_seeds: list[Id] = Field(default_factory=list, max_length=100)
    library: Text | None = Field(default=None, max_length=MAX_LIBRARY_CHARS)
    paused: bool | None = None


class SeedReportPublic(BaseModel):
    found: list[str]
    as_text: list[str]
    missing: list[str]
    skipped: list[str] = []  # library entries that could not be read, "line 26: reason"


class SubscriberUpdated(BaseModel):
    subscriber: SubscriberPublic
    seeds: SeedReportPublic


class PreviewItemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    paper_id: int
    title: str
    url: str
    score: float
    reason: str


class PreviewPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    items: list[PreviewItemPublic]
    note: str | None


# HTML forms. Every field is text, as a browser sends it; the route parses and names the
# field that is wrong. Declared as models so OpenAPI (and schemathesis) know the bodies.


# What a form field must look like for the route to take it (the routes parse the text and
# name the field that is wrong); described only, as for the JSON bodies above.
_HOUR = r"^(1?[0-9]|2[0-3])$"
_SIZE = r"^([1-9]|[1-4][0-9]|50)$"
_ID = r"^[1-9][0-9]{0,14}$"  # below 10**15, within MAX_ID


class SignUpForm(BaseModel):
    model_config = ConfigDict(json_schema_extra={"required": ["email"]})

    email: str = Field(default="", json_schema_extra={"pattern": EMAIL_PATTERN})
    name: str = Field(default="", json_schema_extra={"pattern": ONE_LINE_PATTERN})
    keywords: str = Field(
        default="",
        description="One per line (or comma-separated).",
        json_schema_extra={"pattern": FORM_TEXT_PATTERN},
    )
    authors: str = Field(
        default="", description="One per line.", json_schema_extra={"pattern": FORM_TEXT_PATTERN}
    )
    categories: str = Field(
        default="",
        description="arXiv categories, e.g. cs.LG stat.ML.",
        json_schema_extra={"pattern": FORM_TEXT_PATTERN},
    )
    description: str = Field(
        default="",
        description="Free text about what you read.",
        json_schema_extra={"pattern": FORM_TEXT_PATTERN},
    )
    seeds: str = Field(
        default="",
        description="arXiv ids, DOIs or titles, one per line.",
        json_schema_extra={"pattern": FORM_TEXT_PATTERN},  # an unmatched one becomes an interest
    )
    library: str = Field(default="", description="A BibTeX or CSL-JSON export.")
    timezone: str = Field(default="UTC", json_schema_extra=_timezones)
    send_hour: str = Field(default="7", json_schema_extra={"pattern": _HOUR})
    frequency: str = Field(
        default="daily", json_schema_extra={"enum": ["daily", "weekdays", "weekly"]}
    )
    digest_size: str = Field(default="10", json_schema_extra={"pattern": _SIZE})
    # A honeypot: hidden from people, filled in by bots that fill in every field.
    website: str = Field(default="", description="Leave empty.")


class PreferencesForm(SignUpForm):
    # Every field may be left out: what is not posted stays as stored.
    model_config = ConfigDict(json_schema_extra={"required": []})

    # The address is not changed from this page: whatever is posted is not read.
    email: str = Field(default="", description="Not read: the address stays as it is.")
    remove_seed: list[str] = Field(
        default_factory=list,
        description="Seed paper ids to drop.",
        json_schema_extra={"items": {"type": "string", "pattern": _ID}},
    )
    strictness: str = Field(
        default="normal",
        description="How close a paper must be: fewer, normal or more.",
        json_schema_extra={"enum": ["fewer", "normal", "more"]},
    )


class PreferencesLinkForm(BaseModel):
    email: str = ""
    website: str = Field(default="", description="Leave empty.")


class DeleteForm(BaseModel):
    # Without the box ticked nothing is deleted and the page says so (422).
    model_config = ConfigDict(json_schema_extra={"required": ["confirm"]})

    confirm: str = Field(
        default="", description="Must be 'yes'.", json_schema_extra={"enum": ["yes"]}
    )
