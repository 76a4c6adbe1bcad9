"""Request and response bodies, one family per entity (``Create`` in, ``Public`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

InterestKind = Literal["keyword", "author", "category", "text"]
EventKind = Literal["click", "more", "less"]


class HealthPublic(BaseModel):
    status: Literal["ok", "error"]
    database: str


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
    value: str = Field(min_length=1, max_length=2000)


class InterestPublic(InterestCreate):
    model_config = ConfigDict(from_attributes=True)


class UserCreate(BaseModel):
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    digest_size: int = Field(default=10, ge=1, le=50)
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
    user_id: int
    paper_id: int
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
    """The data signed into a click, more or less link: user, paper, digest."""

    u: int
    p: int
    d: int | None = None


class UserLink(BaseModel):
    """The data signed into an unsubscribe link: the user."""

    u: int
