"""Template mode: many digests in one Mail Send request, rendered by SendGrid.

SendGrid fills the dynamic template in ``sendgrid_templates/`` once per personalization
(up to :data:`MAX_PERSONALIZATIONS` per request) from its ``dynamic_template_data``. This
module turns :class:`~recsys.delivery.compose.DigestEmail` records into that request body;
it is pure (no sockets, no clock). :class:`~recsys.delivery.backends.SendGridTemplateBackend`
sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from pathlib import Path
from typing import Any

# The rendered mode's view of a digest is the one definition of what a digest shows
# (shortened titles and reasons, "et al." authors, the intro line), so both modes use it.
from recsys.delivery.compose import DigestEmail, _template_context, _validate, list_id

MAX_PERSONALIZATIONS = 1000  # SendGrid's limit per Mail Send request
TEMPLATE_DIR = Path(__file__).parent / "sendgrid_templates"
TEMPLATE_FILES = {
    "subject": "subject.hbs",
    "html_content": "digest.html.hbs",
    "plain_content": "digest.txt.hbs",
}


def template_data(email: DigestEmail) -> dict[str, Any]:
    """The ``dynamic_template_data`` of one digest: what the Handlebars templates read.

    Raises
    ------
    ValueError
        As :func:`~recsys.delivery.compose.compose` does for a digest it would refuse.
    """
    _validate(email)
    data = _template_context(email)
    # Handlebars has only a 0-based @index; the text part numbers papers from 1.
    for n, item in enumerate(data["items"], start=1):
        item["number"] = n
    return data


def template_personalization(email: DigestEmail) -> dict[str, Any]:
    """One recipient of a template-mode request, carrying its digest id and unsubscribe URL."""
    to = {"email": email.to_email} | ({"name": email.to_name} if email.to_name else {})
    return {
        "to": [to],
        "dynamic_template_data": template_data(email),
        # Strings only: SendGrid rejects other types in custom_args.
        "custom_args": {"digest_id": str(email.digest_id)},
        # Per recipient: each one-click unsubscribe URL is signed for its own user.
        "headers": {
            "List-Unsubscribe": f"<{email.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }


def template_payload(
    emails: Sequence[DigestEmail],
    *,
    template_id: str,
    from_email: str,
    categories: Sequence[str] = ("digest",),
) -> dict[str, Any]:
    """The Mail Send body that delivers ``emails`` through dynamic template ``template_id``.

    Raises
    ------
    ValueError
        For no e-mails, more than :data:`MAX_PERSONALIZATIONS`, a sender that is not an
        address, or a digest :func:`template_data` refuses (the message names it).
    """
    if not 1 <= len(emails) <= MAX_PERSONALIZATIONS:
        raise ValueError(
            f"a template-mode request carries 1 to {MAX_PERSONALIZATIONS} digests, "
            f"got {len(emails)}"
        )
    return {
        "from": _sender(from_email),
        "template_id": template_id,
        "personalizations": [template_personalization(e) for e in emails],
        # The same for every recipient, so set once for the request, as compose sets it.
        "headers": {"List-Id": list_id(from_email)},
        "categories": list(categories),
    }


def _sender(from_email: str) -> dict[str, str]:
    name, addr = parseaddr(from_email)
    if "@" not in addr:
        raise ValueError(f"from_email {from_email!r} is not an address like 'Name <a@b.org>'")
    return {"email": addr} | ({"name": name} if name else {})


def template_version(name: str = "paperboy-digest") -> dict[str, Any]:
    """The body of SendGrid's ``POST /v3/templates/{id}/versions`` for the shipped template."""
    version: dict[str, Any] = {"name": name, "active": 1, "generate_plain_content": False}
    for field, filename in TEMPLATE_FILES.items():
        version[field] = (TEMPLATE_DIR / filename).read_text(encoding="utf-8")
    return version
