"""HTML form bodies: read them without extra dependencies and turn fields into domain values.

Browsers post ``application/x-www-form-urlencoded``; the standard library parses it, so the
pages need no multipart package. Every parse error is a ``SubscriberError`` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import available_timezones

from fastapi import Depends, Request, status
from pydantic import BaseModel, ValidationError

from api.pages import PageError
from api.schemas import MAX_ID, MAX_LIBRARY_CHARS, PreferencesForm, SignUpForm
from recsys.settings import Settings
from recsys.subscribers.accounts import Interest, Preferences, SubscriberError, check_text
from recsys.subscribers.library import SeedPaper, parse_seed

# A pasted library may be large; anything beyond this is not a form a person filled in.
MAX_FORM_BYTES = 3 * MAX_LIBRARY_CHARS
MAX_FORM_FIELDS = 500
URLENCODED = "application/x-www-form-urlencoded"

FormModel = TypeVar("FormModel", bound=BaseModel)


async def read_form(request: Request) -> dict[str, Any]:
    """The posted fields; a field given several times (checkboxes) becomes a list."""
    if request.headers.get("content-type", URLENCODED).split(";")[0].strip() != URLENCODED:
        raise PageError(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "Unsupported form",
            "Send the form as a web browser does.",
        )
    # The route's max_body_size (MAX_FORM_BYTES at most) has capped this while it streamed.
    body = await request.body()
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageError(
            status.HTTP_400_BAD_REQUEST, "Bad form", "This form could not be read."
        ) from exc
    fields: dict[str, Any] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return {name: values if len(values) > 1 else values[0] for name, values in fields.items()}


def form_of(model: type[FormModel]) -> Any:
    """A dependency giving the posted form as ``model``; malformed bodies are a 400 page."""

    async def parse(fields: Annotated[dict[str, Any], Depends(read_form)]) -> FormModel:
        if "remove_seed" in fields and isinstance(fields["remove_seed"], str):
            fields["remove_seed"] = [fields["remove_seed"]]
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            raise PageError(
                status.HTTP_400_BAD_REQUEST, "Bad form", "This form could not be read."
            ) from exc

    return Depends(parse)


def openapi_form(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a urlencoded body shaped like ``model``."""
    # Every field has a default, so an empty body is a valid (empty) form.
    schema = {"content": {URLENCODED: {"schema": model.model_json_schema()}}, "required": False}
    return {"requestBody": schema}


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    """The IANA zones a subscriber can pick, sorted by name."""
    return tuple(sorted(available_timezones()))


def lines(text: str, *, commas: bool = False) -> list[str]:
    """Non-blank lines of a textarea (also split at commas when ``commas``)."""
    parts = re.split(r"[\r\n,]+" if commas else r"[\r\n]+", text)
    return [" ".join(p.split()) for p in parts if p.strip()]


# The form field each kind of interest is typed into.
INTEREST_FIELDS = {
    "keyword": "keywords",
    "author": "authors",
    "category": "categories",
    "text": "description",
}


def interests_of(form: SignUpForm) -> list[Interest]:
    """The explicit interests typed into a sign-up or preferences form."""
    interests = [Interest("keyword", k) for k in lines(form.keywords, commas=True)]
    interests += [Interest("author", a) for a in lines(form.authors)]
    interests += [Interest("category", c) for c in re.split(r"[\s,;]+", form.categories) if c]
    interests += [Interest("text", line) for line in lines(form.description)]
    return interests


def seeds_of(form: SignUpForm) -> list[SeedPaper]:
    """The seed papers typed one per line; a line that is not storable text names the field
    (an unmatched seed is kept as a title interest, on sign-up and on the preferences page
    alike)."""
    for line in lines(form.seeds):
        check_text("seeds", line)
    return [parse_seed(line) for line in lines(form.seeds)]


def preferences_of(form: SignUpForm) -> Preferences:
    """Everything but the seeds and the library, as a full replacement of the settings."""
    return Preferences(
        name=form.name,
        timezone=form.timezone.strip(),
        send_hour=_integer(form.send_hour, "send_hour"),
        frequency=form.frequency,
        digest_size=_integer(form.digest_size, "digest_size"),
        interests=interests_of(form),
    )


def changed_preferences(form: PreferencesForm, stored: Sequence[Interest]) -> Preferences:
    """The settings the posted form changes; a field it does not hold is left as stored.

    A request that left a field out (a script, a truncated POST, a form from an older page)
    says nothing about it: an empty POST must not erase every interest and the schedule.
    Interests are kept per kind: posting only ``keywords`` replaces only the keywords.
    """
    posted = form.model_fields_set
    full = preferences_of(form)  # a field not posted holds its valid default, then dropped

    def given(field: str, value: Any) -> Any:
        return value if field in posted else None

    interests = None
    if posted & set(INTEREST_FIELDS.values()):
        typed = [i for i in full.interests or () if INTEREST_FIELDS[i.kind] in posted]
        kept = [i for i in stored if INTEREST_FIELDS.get(i.kind) not in posted]
        interests = kept + typed
    return Preferences(
        name=given("name", full.name),
        timezone=given("timezone", full.timezone),
        send_hour=given("send_hour", full.send_hour),
        frequency=given("frequency", full.frequency),
        digest_size=given("digest_size", full.digest_size),
        interests=interests,
        strictness=given("strictness", form.strictness),
    )


def removed_seeds(form: PreferencesForm) -> list[int]:
    ids = [_integer(value, "remove_seed") for value in form.remove_seed]
    # Out of the 64-bit range the database driver fails instead of matching nothing.
    if any(not 1 <= paper_id <= MAX_ID for paper_id in ids):
        raise SubscriberError("remove_seed", "is not the id of a paper")
    return ids


def _integer(text: str, field: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise SubscriberError(field, f"{text!r} is not a whole number") from None


def same_origin(request: Request, settings: Settings) -> bool:
    """False for a form another site made a browser post here (cross-site request forgery).

    ``Sec-Fetch-Site`` decides where browsers send it (all current ones): only our own pages
    (or the reader typing the address) may post. ``Origin`` cannot decide alone: our pages
    say ``Referrer-Policy: no-referrer``, so browsers post their forms with ``Origin: null``.
    Without ``Sec-Fetch-Site`` an ``Origin`` naming another site is refused; a client that
    sends neither is not a browser driven by another site's page, so it is let through.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    ours = urlsplit(settings.public_base_url)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc) or (
        theirs.netloc != "" and theirs.netloc == request.headers.get("host")
    )
