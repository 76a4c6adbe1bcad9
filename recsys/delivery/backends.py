"""E-mail backends: the one owner of SendGrid and SMTP sockets and of the outbox folder.

Every backend takes a composed :class:`~email.message.EmailMessage` and either returns a
:class:`SendResult` or raises :class:`DeliveryError`, which says whether a retry is safe:

- ``transient``: nothing was delivered and a later retry may work (rate limit, 5xx, no route);
- permanent (``transient=False, unknown=False``): retrying gives the same answer (bad request,
  bad key, recipient refused), so the digest is marked failed;
- ``unknown``: the provider may have accepted the message (we lost the reply), so resending
  could duplicate it. The caller records the digest as ``unknown`` instead of retrying.
"""

from __future__ import annotations

import http.client
import math
import os
import re
import smtplib
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

import python_http_client.exceptions
import sendgrid

from recsys.delivery.batch import MAX_PERSONALIZATIONS, template_payload
from recsys.delivery.compose import (
    MAX_MESSAGE_BYTES,
    MESSAGE_POLICY,
    DigestEmail,
    _one_line,
    _render,
    _template_context,
    _validate,
    compose,
    html_part,
    list_id,
    text_part,
)

if TYPE_CHECKING:
    from recsys.settings import Settings

SMTP_DEFAULT_TIMEOUT_S = 10.0
SENDGRID_DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
# Reopen a SendGrid connection idle longer than this rather than risk the server closing it
# under the next request (well below common keep-alive timeouts of 60 s and more).
KEEPALIVE_IDLE_S = 20.0
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SendResult:
    """What a backend reports after handing a message over.

    Parameters
    ----------
    provider_id : str or None
        SendGrid's ``X-Message-Id``, the ``.eml`` path for the file backend, or the
        ``Message-ID`` for SMTP. ``None`` when the provider gave no id.
    """

    provider_id: str | None


class DeliveryError(Exception):
    """A send that did not (verifiably) succeed, with what to do next.

    Parameters
    ----------
    message : str
        What happened, for logs and the digest row.
    transient : bool
        True when nothing was delivered and retrying later is safe.
    unknown : bool
        True when the provider may have accepted the message (e.g. a timeout after the
        request went out). Never resend such a message blindly. Implies not transient.
    retry_after_s : float or None
        The provider's requested wait before retrying, if it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        unknown: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        if transient and unknown:
            raise ValueError("a DeliveryError cannot be both transient and unknown")
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.unknown = unknown
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles task exceptions; the default reduce would call cls(message) and fail
        # on the keyword-only arguments, losing the classification on the way.
        return (
            _rebuild_delivery_error,
            (self.message, self.transient, self.unknown, self.retry_after_s),
        )


def _rebuild_delivery_error(
    message: str, transient: bool, unknown: bool, retry_after_s: float | None
) -> DeliveryError:
    return DeliveryError(message, transient=transient, unknown=unknown, retry_after_s=retry_after_s)


def classify_http_failure(
    status: int | None,
    *,
    request_sent: bool,
    retry_after: str | None = None,
    detail: str | None = None,
) -> DeliveryError:
    """Classify a failed HTTP send as transient, permanent or unknown.

    Parameters
    ----------
    status : int or None
        The HTTP status received, or None when no response arrived.
    request_sent : bool
        Whether the whole request had gone out before the failure. Only matters when
        ``status`` is None: a refused connection is safe to retry, a lost reply is not.
    retry_after : str or None
        The ``Retry-After`` header, honoured when it is a number of seconds.
    detail : str or None
        Extra text for the message, e.g. the provider's error body.

    Returns
    -------
    DeliveryError
        429 and 5xx: transient; other statuses: permanent; no status: transient if the
        request was not sent, else unknown.
    """
    suffix = f": {detail}" if detail else ""
    if status is None and not request_sent:
        return DeliveryError(f"could not reach the server{suffix}", transient=True)
    if status is None:
        return DeliveryError(
            f"no reply after the request was sent; it may have been accepted{suffix}",
            transient=False,
            unknown=True,
        )
    if status == 429 or 500 <= status <= 599:
        wait = _retry_after_seconds(retry_after)
        return DeliveryError(
            f"HTTP {status}, retry later{suffix}", transient=True, retry_after_s=wait
        )
    return DeliveryError(f"HTTP {status}, will not retry{suffix}", transient=False)


def _retry_after_seconds(value: str | None) -> float | None:
    # Only the delta-seconds form: the HTTP-date form needs a clock, and SendGrid sends seconds.
    # A negative, NaN or infinite value would break whoever schedules the retry, so drop it.
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


@runtime_checkable
class EmailBackend(Protocol):
    """What the delivery task needs from a backend that sends one composed message at a time."""

    name: str

    def send(self, message: EmailMessage, *, digest_id: int) -> SendResult:
        """Hand ``message`` to the provider, or raise :class:`DeliveryError`."""
        ...


@runtime_checkable
class BatchEmailBackend(Protocol):
    """A backend that sends many digests in one request and renders them itself."""

    name: str
    batch_size: int

    def send_batch(self, emails: Sequence[DigestEmail]) -> SendResult:
        """Hand all of ``emails`` over in one go, or raise :class:`DeliveryError` for all."""
        ...


@runtime_checkable
class ConcurrentEmailBackend(Protocol):
    """A rendered-mode backend that sends many digests at once, one request each."""

    name: str
    concurrency: int
    timeout_s: float  # the longest one request may take

    def send_many(
        self, emails: Sequence[DigestEmail], from_email: str
    ) -> list[SendResult | DeliveryError | None]:
        """Send each of ``emails``; an outcome per e-mail, in order (see the implementation)."""
        ...


# File --------------------------------------------------------------------------------------


class FileBackend:
    """Write each digest to ``<outbox>/digest-<id>.eml`` and ``.html`` instead of sending it.

    Used in development and tests. Re-sending a digest overwrites the same two files, and
    each is written to a temporary file and renamed, so a reader never sees half a file.

    Parameters
    ----------
    outbox_dir : Path
        Folder for the files; created on first send.
    """

    name = "file"

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = Path(outbox_dir)

    def send(self, message: EmailMessage, *, digest_id: int) -> SendResult:
        """Write the message; the provider id is the ``.eml`` path."""
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        stem = self.outbox_dir / f"digest-{digest_id}"
        # The .eml goes last: whoever sees it can rely on the .html being complete too.
        _write_atomically(stem.with_suffix(".html"), html_part(message).encode("utf-8"))
        eml = stem.with_suffix(".eml")
        _write_atomically(eml, message.as_bytes())
        return SendResult(provider_id=str(eml))

    def forget(self, user_id: int, digest_ids: Iterable[int]) -> int:
        """Delete every file written for a subscriber; return how many went.

        Their digests (``digest_ids``), their confirmations and their preferences-link
        e-mails (filed under :func:`confirmation_outbox_key` and :func:`link_outbox_key`),
        and any temporary file a crashed write left behind. A missing folder holds nothing.
        """
        keys = [*digest_ids, confirmation_outbox_key(user_id), link_outbox_key(user_id)]
        removed = 0
        for key in keys:
            for path in self._files_of(key):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _files_of(self, key: int) -> list[Path]:
        if not self.outbox_dir.is_dir():
            return []
        names = (f"digest-{key}.eml", f"digest-{key}.html")
        found = [self.outbox_dir / n for n in names if (self.outbox_dir / n).exists()]
        # _write_atomically's leftovers: ".<name>.<random>.tmp"; the dot after the name keeps
        # digest-1's pattern from matching digest-12's files.
        for name in names:
            found.extend(self.outbox_dir.glob(f".{name}.*.tmp"))
        return found


def confirmation_outbox_key(user_id: int) -> int:
    """The id a confirmation e-mail is filed under: a backend's API is keyed by digest id.

    Negative, so it can never overwrite a digest's ``digest-<id>`` files in the outbox or
    be matched to a digest by the delivery webhook.
    """
    return -user_id


# Preferences-link e-mails are filed apart from confirmations.
LINK_OUTBOX_OFFSET = 2**40


def link_outbox_key(user_id: int) -> int:
    """The id a preferences-link e-mail is filed under: negative, apart from -user_id."""
    return -(LINK_OUTBOX_OFFSET + user_id)


def _write_atomically(path: Path, data: bytes) -> None:
    # The temporary file sits in the same folder so os.replace is a same-filesystem rename.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# SendGrid ----------------------------------------------------------------------------------


def sendgrid_payload(
    message: EmailMessage, digest_id: int, categories: tuple[str, ...]
) -> dict[str, Any]:
    """The SendGrid v3 Mail Send body for a composed digest message.

    Parameters
    ----------
    message : EmailMessage
        A message made by :func:`recsys.delivery.compose.compose`.
    digest_id : int
        Sent as ``custom_args.digest_id`` so event webhooks can be matched to the digest.
    categories : tuple of str
        SendGrid categories for statistics.

    Returns
    -------
    dict
        JSON-serialisable request body.
    """
    # custom_args live in the personalization: SendGrid's OpenAPI spec types the
    # message-level field as a string, so its spec mock rejects an object there.
    personalization = {
        "to": [_sendgrid_address(_single_address(message, "To"))],
        "custom_args": {"digest_id": str(digest_id)},
    }
    return {
        "personalizations": [personalization],
        "from": _sendgrid_address(_single_address(message, "From")),
        "subject": str(message["Subject"]),
        "content": [
            {"type": "text/plain", "value": text_part(message)},
            {"type": "text/html", "value": html_part(message)},
        ],
        "headers": {
            **({"List-Id": str(message["List-Id"])} if message["List-Id"] else {}),
            "List-Unsubscribe": str(message["List-Unsubscribe"]),
            "List-Unsubscribe-Post": str(message["List-Unsubscribe-Post"]),
        },
        "categories": list(categories),
    }


def rendered_payload(
    email: DigestEmail, from_email: str, categories: tuple[str, ...]
) -> dict[str, Any]:
    """The body :func:`sendgrid_payload` gives for ``compose(email, from_email)``, built
    without the MIME message.

    SendGrid gets the text and HTML parts as JSON strings, so building the MIME message only
    to decode its parts again cost 70% of the rendering when measured (headers parsed, parts
    encoded, serialised for the size check). Only a message that might come near the size
    limit is composed, so the limit refuses exactly what :func:`compose` refuses.

    Raises
    ------
    ValueError
        As :func:`~recsys.delivery.compose.compose` does, naming the digest.
    """
    _validate(email)
    context = _template_context(email)
    text = _as_mime_body(_render("digest.txt.j2", context))
    html = _as_mime_body(_render("digest.html.j2", context))
    if not _surely_fits(email, text, html):
        return sendgrid_payload(compose(email, from_email), email.digest_id, categories)
    to, subject = _to_and_subject(email)
    personalization = {"to": [to], "custom_args": {"digest_id": str(email.digest_id)}}
    unsubscribe = _one_line(email, f"<{email.unsubscribe_url}>")
    return {
        "personalizations": [personalization],
        "from": dict(_sender_entry(from_email)),
        "subject": subject,
        "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
        "headers": {
            "List-Id": list_id(from_email),
            "List-Unsubscribe": unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "categories": list(categories),
    }


def _as_mime_body(rendered: str) -> str:
    # What a MIME part decodes back to: set_content splits the UTF-8 bytes into lines and
    # ends every line, the last one included, with the policy's "\n".
    lines = rendered.encode("utf-8").splitlines()
    return (b"\n".join(lines) + b"\n").decode("utf-8")


def _surely_fits(email: DigestEmail, text: str, html: str) -> bool:
    """Whether the composed message is certainly under the size limit (else compose it).

    A non-ASCII part is base64 or quoted-printable, chosen from its first ten lines only,
    so either may encode the rest. Bounded here by the larger of the two; the headers by
    what they hold, each character at most 4 UTF-8 bytes, 4/3 more for RFC 2047.
    """
    header_text = len(email.subject) + len(email.to_name or "") + len(email.to_email)
    headers = 2048 + 6 * header_text + 2 * len(email.unsubscribe_url)
    return _part_bound(text) + _part_bound(html) + headers < MAX_MESSAGE_BYTES


_ASCII = bytes(range(128))


def _part_bound(part: str) -> float:
    raw = part.encode("utf-8")
    # Quoted-printable writes a byte as "=XX" unless it is plain ASCII, and breaks lines at
    # 76 characters; base64 writes 4 characters per 3 bytes, 76 to a line.
    escaped = len(raw.translate(None, _ASCII)) + raw.count(b"=") + raw.count(b"\t")
    quoted = (len(raw) + 2 * escaped) * 78 / 75
    return max(quoted, len(raw) * 4 / 3 * 78 / 76) + 64


# Names, addresses and subjects these match come back from the header classes unchanged;
# parsing them there was half the cost of a payload when measured.
_PLAIN_NAME = re.compile(r"[^\W_]+(?:[ '-][^\W_]+)*")
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)


def _to_and_subject(email: DigestEmail) -> tuple[dict[str, str], str]:
    plain_name = email.to_name is None or _PLAIN_NAME.fullmatch(email.to_name)
    plain_subject = not any(c in email.subject for c in ("\r", "\n", "=?"))
    if plain_name and plain_subject and _PLAIN_ADDRESS.fullmatch(email.to_email):
        to = {"email": email.to_email} | ({"name": email.to_name} if email.to_name else {})
        return to, email.subject
    # Through the same header classes as compose, so a name or subject that compose would
    # refuse (a line break) or rewrite (quoting, encoded words) is refused or rewritten alike.
    headers = EmailMessage(policy=MESSAGE_POLICY)
    headers["To"] = Address(display_name=email.to_name or "", addr_spec=email.to_email)
    headers["Subject"] = email.subject
    return _sendgrid_address(_single_address(headers, "To")), str(headers["Subject"])


@lru_cache(maxsize=8)
def _sender_entry(from_email: str) -> dict[str, str]:
    headers = EmailMessage(policy=MESSAGE_POLICY)
    headers["From"] = from_email
    return _sendgrid_address(_single_address(headers, "From"))


def _single_address(message: EmailMessage, header: str) -> Address:
    value = message[header]
    # Under email.policy.default, address headers parse into objects with .addresses.
    addresses: tuple[Address, ...] = getattr(value, "addresses", ())
    if len(addresses) != 1:
        raise ValueError(f"message {header} must hold exactly one address, got {value!r}")
    return addresses[0]


def _sendgrid_address(address: Address) -> dict[str, str]:
    entry = {"email": address.addr_spec}
    if address.display_name:
        entry["name"] = address.display_name
    return entry


class MailSendClient:
    """The one owner of SendGrid sockets: v3 Mail Send through the ``sendgrid`` client.

    The client builds the URL, the auth header, the JSON body, the response and its typed
    HTTP errors. Only its socket layer is replaced (``_make_request``, the seam the library
    keeps for exactly this) by :class:`KeepAliveTransport`, because python-http-client opens
    a new TCP (and TLS) connection per request, which at thousands of messages a minute costs
    more than the request itself.

    Parameters
    ----------
    api_key, host, timeout_s
        As for :class:`SendGridBackend`.
    """

    def __init__(self, api_key: str, host: str, timeout_s: float) -> None:
        if not api_key:
            raise ValueError("SendGrid needs an API key (PAPERBOY_SENDGRID_API_KEY)")
        if timeout_s <= 0:
            raise ValueError(f"SendGrid timeout_s must be positive, got {timeout_s}")
        self.timeout_s = timeout_s
        self._client = sendgrid.SendGridAPIClient(api_key=api_key, host=host)
        self._mail_send = self._client.client.mail.send
        self._mail_send._make_request = KeepAliveTransport().make_request

    def post(self, payload: dict[str, Any], what: str) -> SendResult:
        """POST one Mail Send body; ``what`` names it in errors (e.g. ``"digest 42"``)."""
        try:
            # SendGridAPIClient.send() takes no timeout, so call its HTTP client directly.
            response = self._mail_send.post(request_body=payload, timeout=self.timeout_s)
        except python_http_client.exceptions.HTTPError as exc:
            raise _sendgrid_error(what, _http_error_failure(exc)) from exc
        except urllib.error.URLError as exc:
            # Raised for failures while connecting or writing the request (urllib's
            # do_open, and KeepAliveTransport alike). SendGrid acts only on a complete
            # request, so nothing can have been accepted and a retry is safe.
            failure = classify_http_failure(None, request_sent=False, detail=str(exc.reason))
            raise _sendgrid_error(what, failure) from exc
        except (OSError, http.client.HTTPException) as exc:
            # Anything else comes from waiting for or reading the reply (a timeout, a reset):
            # the request went out and SendGrid may have queued the message.
            failure = classify_http_failure(None, request_sent=True, detail=repr(exc))
            raise _sendgrid_error(what, failure) from exc
        return SendResult(provider_id=response.headers.get("X-Message-Id"))


class KeepAliveTransport:
    """HTTP/1.1 connections kept open per thread and reused, for python-http-client.

    A drop-in for ``python_http_client.Client._make_request``: it takes the prepared urllib
    request and returns the response, or raises the library's typed ``HTTPError`` for a
    non-2xx status, as urllib's opener would. Failures before the request is fully written
    are raised as ``URLError`` (not sent); failures after it as themselves (maybe accepted).
    """

    def __init__(self, idle_s: float = KEEPALIVE_IDLE_S) -> None:
        self.idle_s = idle_s
        self._local = threading.local()

    def make_request(
        self, _opener: object, request: urllib.request.Request, timeout: float | None = None
    ) -> http.client.HTTPResponse:
        conn = self._connection(request, timeout)
        try:
            try:
                conn.request(
                    request.get_method(),
                    request.selector,
                    body=request.data,
                    headers=dict(request.header_items()),
                )
            except (OSError, http.client.HTTPException) as exc:
                raise urllib.error.URLError(exc) from exc
            response = conn.getresponse()
        except BaseException:
            self._discard()  # a half-used connection must never carry the next request
            raise
        self._local.last_used = time.monotonic()
        if not 200 <= response.status < 300:
            error = urllib.error.HTTPError(
                request.full_url, response.status, response.reason, response.headers, response
            )
            raise python_http_client.exceptions.handle_error(error)
        return response

    def _connection(
        self, request: urllib.request.Request, timeout: float | None
    ) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        key = (request.type, request.host)
        idle = time.monotonic() - getattr(self._local, "last_used", 0.0)
        # A server closes idle connections on its own schedule; writing into one it has just
        # closed loses the reply, which we would have to report as "unknown". Reopening an
        # idle connection first keeps that race away from the common path.
        if conn is not None and (getattr(self._local, "key", None) != key or idle > self.idle_s):
            self._discard()
            conn = None
        if conn is None:
            factory = (
                http.client.HTTPSConnection
                if request.type == "https"
                else http.client.HTTPConnection
            )
            conn = factory(request.host, timeout=timeout)
            self._local.conn, self._local.key = conn, key
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()


class SendGridBackend:
    """Send through SendGrid's v3 Mail Send API: our rendered HTML, one request per message.

    Parameters
    ----------
    api_key : str
        SendGrid API key.
    host : str
        API base URL, ``https://api.sendgrid.com`` or a stand-in's URL in tests.
    timeout_s : float
        Socket timeout for every request. The library's default is to wait forever,
        which would hang a worker on a stalled connection.
    categories : tuple of str
        SendGrid categories added to every message.
    concurrency : int
        Requests in flight at once in :meth:`send_many`, each on its own kept-alive
        connection (``PAPERBOY_SENDGRID_CONCURRENCY``).
    """

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        host: str,
        timeout_s: float,
        categories: tuple[str, ...] = ("digest",),
        concurrency: int = SENDGRID_DEFAULT_CONCURRENCY,
    ) -> None:
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"SendGrid concurrency must be 1 to {MAX_CONCURRENCY}: {concurrency}")
        self._api = MailSendClient(api_key, host, timeout_s)
        self.timeout_s = timeout_s
        self.categories = categories
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()

    def send(self, message: EmailMessage, *, digest_id: int) -> SendResult:
        """POST the message; the provider id is the ``X-Message-Id`` response header."""
        payload = sendgrid_payload(message, digest_id, self.categories)
        return self._api.post(payload, f"digest {digest_id}")

    def send_many(
        self, emails: Sequence[DigestEmail], from_email: str
    ) -> list[SendResult | DeliveryError | None]:
        """Render and POST each digest, up to ``concurrency`` requests at once.

        Each thread keeps its own connection alive (:class:`KeepAliveTransport`), so this
        is ``concurrency`` kept-alive connections; a real provider answers in tens to
        hundreds of milliseconds, and one request at a time leaves the worker idle for all
        of them.

        Returns
        -------
        list
            Per e-mail, in order: a :class:`SendResult`, a :class:`DeliveryError` (a digest
            that cannot be rendered is a permanent one), or None for one never sent because
            an earlier request's outcome was unknown: the provider stopped answering in
            time, and starting more requests would only stack more timeouts.
        """
        stop = threading.Event()

        def one(email: DigestEmail) -> SendResult | DeliveryError | None:
            if stop.is_set():
                return None
            outcome = self._send_one(email, from_email)
            if isinstance(outcome, DeliveryError) and outcome.unknown:
                stop.set()
            return outcome

        if self.concurrency == 1:
            return [one(email) for email in emails]
        return list(self._executor().map(one, emails))

    def _send_one(self, email: DigestEmail, from_email: str) -> SendResult | DeliveryError:
        try:
            payload = rendered_payload(email, from_email, self.categories)
        except ValueError as exc:
            # Fails the same way every time: permanent, never retried forever.
            return DeliveryError(f"cannot build the message: {exc}", transient=False)
        try:
            return self._api.post(payload, f"digest {email.digest_id}")
        except DeliveryError as exc:
            return exc

    def _executor(self) -> ThreadPoolExecutor:
        # Made on first use, not in __init__: a Celery prefork worker builds the backend
        # before forking, and threads do not survive a fork.
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sendgrid")
                self._pool_pid = os.getpid()
            return self._pool

    def close(self) -> None:
        """Stop the sending threads (their kept-alive connections close with them)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


class SendGridTemplateBackend:
    """Send through a SendGrid dynamic template: up to 1,000 digests per Mail Send request.

    SendGrid renders every message from the template in ``sendgrid_templates/`` (see its
    README for uploading it) and each recipient's ``dynamic_template_data``. A request is
    accepted or refused as a whole, so one outcome covers the whole batch.

    Parameters
    ----------
    api_key, host, timeout_s
        As for :class:`SendGridBackend`.
    template_id : str
        The dynamic template's id (``d-...``).
    from_email : str
        Sender, ``"Name <addr@domain>"``.
    categories : tuple of str
        SendGrid categories added to every message.
    batch_size : int
        Digests per request, at most 1,000 (SendGrid's limit on personalizations).
    """

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        host: str,
        timeout_s: float,
        *,
        template_id: str,
        from_email: str,
        categories: tuple[str, ...] = ("digest",),
        batch_size: int = MAX_PERSONALIZATIONS,
    ) -> None:
        if not template_id:
            raise ValueError("template mode needs a template id (PAPERBOY_SENDGRID_TEMPLATE_ID)")
        if not 1 <= batch_size <= MAX_PERSONALIZATIONS:
            raise ValueError(f"batch_size must be 1 to {MAX_PERSONALIZATIONS}, got {batch_size}")
        self._api = MailSendClient(api_key, host, timeout_s)
        self.template_id = template_id
        self.from_email = from_email
        self.categories = categories
        self.batch_size = batch_size

    def send_batch(self, emails: Sequence[DigestEmail]) -> SendResult:
        """POST one request for all of ``emails``; the provider id is its ``X-Message-Id``."""
        payload = template_payload(
            emails, template_id=self.template_id, from_email=self.from_email,
            categories=self.categories,
        )  # fmt: skip
        return self._api.post(payload, _describe(emails))


def _describe(emails: Sequence[DigestEmail]) -> str:
    ids = [e.digest_id for e in emails]
    if len(ids) == 1:
        return f"digest {ids[0]}"
    return f"{len(ids)} digests {min(ids)}..{max(ids)}"


def _http_error_failure(exc: python_http_client.exceptions.HTTPError) -> DeliveryError:
    retry_after = exc.headers.get("Retry-After") if exc.headers is not None else None
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    # SendGrid's error JSON names the offending field; keep it, bounded, for the digest row.
    return classify_http_failure(
        exc.status_code, request_sent=True, retry_after=retry_after, detail=body[:500]
    )


def _sendgrid_error(what: str, failure: DeliveryError) -> DeliveryError:
    # Name the provider and digest(s) so a log line on its own says which send failed.
    return DeliveryError(
        f"sendgrid, {what}: {failure.message}",
        transient=failure.transient,
        unknown=failure.unknown,
        retry_after_s=failure.retry_after_s,
    )


# SMTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    implicit_tls: bool
    timeout_s: float


def _parse_smtp_url(url: str) -> _SmtpTarget:
    # Error messages never echo the URL: it may carry a password.
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("smtp_url must look like smtp://user:pass@host:587?starttls=1")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(options) - {"starttls", "timeout"}
    if unknown:
        raise ValueError(f"smtp_url has unknown options {sorted(unknown)}; use starttls, timeout")
    timeout_s = float(options.get("timeout", SMTP_DEFAULT_TIMEOUT_S))
    if timeout_s <= 0:  # 0 would make smtplib's sockets non-blocking, not "no timeout"
        raise ValueError(f"smtp_url timeout must be positive seconds, got {timeout_s}")
    implicit_tls = parts.scheme == "smtps"
    return _SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if implicit_tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        starttls=options.get("starttls", "0").lower() in _TRUE,
        implicit_tls=implicit_tls,
        timeout_s=timeout_s,
    )


class SmtpBackend:
    """Send through an SMTP relay with :mod:`smtplib`.

    Parameters
    ----------
    url : str
        ``smtp://[user:pass@]host[:port][?starttls=1&timeout=10]``, or ``smtps://`` for
        TLS from the first byte (port 465). User and password are percent-decoded.
    """

    name = "smtp"

    def __init__(self, url: str) -> None:
        self._target = _parse_smtp_url(url)

    def send(self, message: EmailMessage, *, digest_id: int) -> SendResult:
        """Relay the message; the provider id is its ``Message-ID``."""
        sender = _single_address(message, "From").addr_spec
        recipient = _single_address(message, "To").addr_spec
        payload = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        smtp: smtplib.SMTP | None = None
        data_sent = False
        try:
            smtp = self._open()
            _envelope(smtp, sender, recipient)
            # From here a lost reply leaves us not knowing whether the relay took the message.
            data_sent = True
            code, reply = smtp.data(payload)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except OSError as exc:  # smtplib.SMTPException is an OSError too
            failure = _classify_smtp_failure(exc, data_sent=data_sent)
            raise DeliveryError(
                f"smtp {self._target.host}, digest {digest_id}: {failure.message}",
                transient=failure.transient,
                unknown=failure.unknown,
            ) from exc
        finally:
            if smtp is not None:
                _quit_quietly(smtp)
        return SendResult(provider_id=str(message["Message-ID"]))

    def _open(self) -> smtplib.SMTP:
        target = self._target
        smtp: smtplib.SMTP
        if target.implicit_tls:
            context = ssl.create_default_context()
            smtp = smtplib.SMTP_SSL(
                target.host, target.port, timeout=target.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(target.host, target.port, timeout=target.timeout_s)
        try:
            smtp.ehlo()
            if target.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if target.username:
                smtp.login(target.username, target.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _envelope(smtp: smtplib.SMTP, sender: str, recipient: str) -> None:
    # The steps of smtplib.sendmail, split out so the DATA phase is known to the caller.
    code, reply = smtp.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    # QUIT comes after the outcome is settled; a failing QUIT must not turn a delivered
    # message into an error (SMTP.__exit__ would raise on a non-221 reply).
    try:
        smtp.quit()
    except OSError:
        smtp.close()


def _classify_smtp_failure(exc: OSError, *, data_sent: bool) -> DeliveryError:
    """4xx reply: transient; 5xx reply: permanent; lost connection: transient, or unknown
    once DATA was under way; anything else (unsupported STARTTLS or AUTH): permanent."""
    code = _smtp_code(exc)
    if code is not None and 400 <= code < 500:
        return DeliveryError(f"SMTP {code}, retry later: {exc}", transient=True)
    if code is not None and 500 <= code < 600:
        return DeliveryError(f"SMTP {code}, will not retry: {exc}", transient=False)
    lost = isinstance(exc, smtplib.SMTPServerDisconnected) or not isinstance(
        exc, smtplib.SMTPException
    )
    if lost and data_sent:
        return DeliveryError(
            f"connection lost during DATA; the relay may have accepted it: {exc!r}",
            transient=False,
            unknown=True,
        )
    if lost:
        return DeliveryError(f"could not talk to the relay: {exc!r}", transient=True)
    return DeliveryError(f"SMTP failure, will not retry: {exc!r}", transient=False)


def _smtp_code(exc: OSError) -> int | None:
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        return min(code for code, _ in exc.recipients.values())
    return None


# Factory -----------------------------------------------------------------------------------


def make_backend(
    kind: str,
    *,
    outbox_dir: Path,
    sendgrid_api_key: str | None,
    sendgrid_api_host: str,
    sendgrid_timeout_s: float,
    smtp_url: str,
    sendgrid_concurrency: int = SENDGRID_DEFAULT_CONCURRENCY,
) -> EmailBackend:
    """Build the backend named by ``PAPERBOY_EMAIL_BACKEND``.

    Parameters
    ----------
    kind : {"file", "sendgrid", "smtp"}
        Which backend.
    outbox_dir : Path
        Folder for the file backend.
    sendgrid_api_key, sendgrid_api_host, sendgrid_timeout_s
        SendGrid settings; the key is required for ``"sendgrid"``.
    smtp_url : str
        Relay URL for ``"smtp"``.
    sendgrid_concurrency : int
        Requests in flight at once when SendGrid sends a chunk of digests.

    Raises
    ------
    ValueError
        For an unknown kind or missing SendGrid key.
    """
    if kind == "file":
        return FileBackend(outbox_dir)
    if kind == "sendgrid":
        if not sendgrid_api_key:
            raise ValueError("email backend 'sendgrid' needs PAPERBOY_SENDGRID_API_KEY")
        return SendGridBackend(
            sendgrid_api_key,
            sendgrid_api_host,
            sendgrid_timeout_s,
            concurrency=sendgrid_concurrency,
        )
    if kind == "smtp":
        return SmtpBackend(smtp_url)
    raise ValueError(f"unknown email backend {kind!r}; choose 'file', 'sendgrid' or 'smtp'")


def backend_from_settings(settings: Settings) -> EmailBackend | BatchEmailBackend:
    """The backend the settings name, including SendGrid's template mode.

    Parameters
    ----------
    settings : Settings
        ``email_backend``, ``sendgrid_mode`` and the SendGrid, SMTP and outbox settings.
    """
    if settings.email_backend == "sendgrid" and settings.sendgrid_mode == "template":
        return SendGridTemplateBackend(
            settings.sendgrid_api_key or "",
            settings.sendgrid_api_host,
            settings.sendgrid_timeout_s,
            template_id=settings.sendgrid_template_id or "",
            from_email=settings.from_email,
            batch_size=settings.sendgrid_batch_size,
        )
    return single_backend_from_settings(settings)


def outbox_from_settings(settings: Settings) -> FileBackend:
    """The file outbox, whatever backend sends now: mail written there while the file
    backend was on stays there after a switch, and a deleted account must leave it too."""
    return FileBackend(settings.outbox_dir)


def single_backend_from_settings(settings: Settings) -> EmailBackend:
    """The one-message-at-a-time backend the settings name (confirmations need one)."""
    return make_backend(
        settings.email_backend,
        outbox_dir=settings.outbox_dir,
        sendgrid_api_key=settings.sendgrid_api_key,
        sendgrid_api_host=settings.sendgrid_api_host,
        sendgrid_timeout_s=settings.sendgrid_timeout_s,
        smtp_url=settings.smtp_url,
        sendgrid_concurrency=settings.sendgrid_concurrency,
    )
