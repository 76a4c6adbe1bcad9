"""E-mails a reader asked for: the double opt-in confirmation and a fresh preferences link.

The API enqueues ``paperboy.send_confirmation`` after the sign-up is committed. The task is
safe to run twice (a second e-mail with a fresh link is harmless) and does nothing once the
address is confirmed, so a redelivered or stale task never mails an active subscriber.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from celery import Task

from recsys.db.models import UserRow
from recsys.db.session import Database
from recsys.delivery import DeliveryError, EmailBackend
from recsys.delivery.backends import confirmation_outbox_key, link_outbox_key
from recsys.delivery.compose import (
    ConfirmationEmail,
    PreferencesLinkEmail,
    compose_confirmation,
    compose_preferences_link,
)
from recsys.settings import Settings, get_settings
from recsys.subscribers.accounts import (
    confirmation_sent,
    suppressed_for_delivery,
    unsent_confirmations,
)
from recsys.subscribers.links import LinkMaker
from workers import runtime
from workers.app import app

log = logging.getLogger(__name__)
# A sign-up's own task normally mails it within seconds; the sweep leaves it this long first.
CONFIRMATION_SETTLE_S = 60.0


def send_confirmation(
    db: Database,
    backend: EmailBackend,
    settings: Settings,
    user_id: int,
    now: datetime,
    *,
    only_if_unsent: bool = False,
) -> bool:
    """Mail ``user_id`` their confirmation link, then record it sent; False (nothing sent)
    unless still pending (and, with ``only_if_unsent``, not yet mailed)."""
    with db.session() as session:
        user = session.get(UserRow, user_id)
        if user is None or user.status != "pending":
            return False
        if only_if_unsent and user.confirmation_sent_at is not None:
            return False
        email = confirmation_email(user, settings, now)
    message = compose_confirmation(email, settings.from_email, now=now)
    backend.send(message, digest_id=confirmation_outbox_key(user_id))
    with db.session() as session:
        confirmation_sent(session, user_id, now)
    return True


def confirmation_email(user: UserRow, settings: Settings, now: datetime) -> ConfirmationEmail:
    """The confirmation e-mail for a pending ``user``, with a link valid ``confirm_ttl_days``."""
    expires = now + timedelta(days=settings.confirm_ttl_days)
    links = LinkMaker(settings.secret_key, settings.public_base_url, expires)
    return ConfirmationEmail(
        user_id=user.id,
        to_email=user.email,
        # Whoever signed the address up typed the name: until its owner confirms, nothing
        # they wrote goes into mail to that address (no "Hi <advert>," to a stranger).
        to_name=None,
        confirm_url=links.confirm(user.id, user.created_at),
        expires_days=settings.confirm_ttl_days,
    )


def send_preferences_link(
    db: Database, backend: EmailBackend, settings: Settings, user_id: int, now: datetime
) -> bool:
    """Mail a subscriber a fresh preferences link; False (nothing sent) when none is due.

    A pending account confirms first (its confirmation leads to the page), and an address
    that bounced or reported spam is mailed nothing.
    """
    with db.session() as session:
        user = session.get(UserRow, user_id)
        if user is None or user.status == "pending":
            return False
        if suppressed_for_delivery(session, user.email):
            return False
        email = preferences_link_email(user, settings, now)
    message = compose_preferences_link(email, settings.from_email, now=now)
    backend.send(message, digest_id=link_outbox_key(user_id))
    return True


def preferences_link_email(
    user: UserRow, settings: Settings, now: datetime
) -> PreferencesLinkEmail:
    """The e-mail with links valid ``link_ttl_days`` (the unsubscribe one never expires)."""
    expires = now + timedelta(days=settings.link_ttl_days)
    links = LinkMaker(settings.secret_key, settings.public_base_url, expires)
    return PreferencesLinkEmail(
        user_id=user.id,
        to_email=user.email,
        preferences_url=links.preferences(user.id, user.created_at),
        unsubscribe_url=links.unsubscribe(user.id, user.created_at),
        expires_days=settings.link_ttl_days,
    )


@app.task(name="paperboy.send_confirmation", bind=True, max_retries=8)
def send_confirmation_task(self: Task, user_id: int, only_if_unsent: bool = False) -> bool:
    """Send the confirmation e-mail; transient failures retry with backoff and jitter."""
    try:
        return send_confirmation(
            runtime.database(),
            runtime.backend(),
            get_settings(),
            user_id,
            runtime.now(),
            only_if_unsent=only_if_unsent,
        )
    except DeliveryError as exc:
        if not exc.transient:
            # Unknown or permanent: a second e-mail would be a duplicate or fail the same
            # way; the subscriber can sign up again to get a new one.
            log.warning("confirmation for user %d not sent: %s", user_id, exc)
            return False
        backoff = min(2**self.request.retries, 300) * random.uniform(0.5, 1.5)
        raise self.retry(countdown=max(backoff, exc.retry_after_s or 0)) from exc


@app.task(name="paperboy.send_preferences_link", bind=True, max_retries=8)
def send_preferences_link_task(self: Task, user_id: int) -> bool:
    """Send a fresh preferences link; transient failures retry with backoff and jitter."""
    try:
        return send_preferences_link(
            runtime.database(), runtime.backend(), get_settings(), user_id, runtime.now()
        )
    except DeliveryError as exc:
        if not exc.transient:
            log.warning("preferences link for user %d not sent: %s", user_id, exc)
            return False
        backoff = min(2**self.request.retries, 300) * random.uniform(0.5, 1.5)
        raise self.retry(countdown=max(backoff, exc.retry_after_s or 0)) from exc


@app.task(name="paperboy.sweep_confirmations")
def sweep_confirmations() -> int:
    """Mail the confirmations no backend accepted (a sign-up while the broker was down, a
    task lost with its worker); on beat, so none waits for a human."""
    settings, now = get_settings(), runtime.now()
    with runtime.database().session() as session:
        ids = unsent_confirmations(
            session,
            now,
            settle=timedelta(seconds=CONFIRMATION_SETTLE_S),
            ttl=timedelta(days=settings.confirm_ttl_days),
            max_attempts=settings.max_send_attempts,
        )
    for user_id in ids:  # after the commit that counted the attempts
        send_confirmation_task.delay(user_id, only_if_unsent=True)
    return len(ids)
