"""The SendGrid stand-in: a local HTTP server speaking enough of v3 Mail Send for our tests.

It is the one fake for the SendGrid seam; unit tests, fault-injection tests, the demo and the
benchmark all use it, so the real :mod:`recsys.delivery.backends` code runs unchanged against
it (real sockets, HTTP/1.1 keep-alive, real timeouts).

What it does, for ``POST /v3/mail/send``, in this order:

1. ``Authorization: Bearer <api_key>`` must match, else **401**.
2. A scripted failure (:meth:`SendGridStandIn.fail_next`), else a random one with
   probability ``failure_rate`` (status drawn from ``failure_statuses`` by a seeded RNG).
3. With probability ``stall_rate`` the request is *not* taken: the reply is held for
   ``hold_s`` and the connection closed without one (a stalled front end; SendGrid never
   queued the message, so no event will ever mention it).
4. The body is checked like SendGrid checks it, minimally (:func:`mail_send_errors`),
   else **400** with SendGrid's ``{"errors": [...]}`` shape.
5. The body is recorded in :attr:`SendGridStandIn.accepted` (and each personalization's
   ``custom_args.digest_id`` in :attr:`accepted_digest_ids`), and SendGrid's events for it
   (``processed``, then ``delivered`` or, for ``bounce_emails``, ``bounce``) are queued.
6. If ``hang_s`` is set, or with probability ``hang_rate`` (then for ``hold_s``), the reply
   is held back: the "accepted, but the client timed out" case. The message counts as
   sent although the client never learns it; its events still go out.
7. **202** with a unique ``X-Message-Id`` header and an empty body.

With a ``webhook_url``, a background thread posts the queued events there like SendGrid's
Event Webhook: JSON arrays, ECDSA-signed (``X-Twilio-Email-Event-Webhook-Signature`` over
timestamp + body, key in :attr:`SendGridStandIn.public_key`), retried until a 2xx answer,
and with probability ``duplicate_event_rate`` an event is posted twice (SendGrid delivers
at least once). ``GET /__stand-in/stats`` reports what was accepted and
``POST /__stand-in/reset`` forgets it (the stand-in's own controls, not SendGrid's API).
Other paths answer 404.

Run it as a process for the demo or the benchmark::

    python -m recsys.testing.sendgrid --port 8025 --failure-rate 0.2

Example::

    with SendGridStandIn() as sg:
        backend = SendGridBackend(sg.api_key, sg.url, timeout_s=2.0)
        backend.send(message, digest_id=1)
        assert sg.bodies[0]["personalizations"][0]["custom_args"] == {"digest_id": "1"}
"""

from __future__ import annotations

import argparse
import base64
import heapq
import itertools
import json
import random
import signal
import socketserver
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_API_KEY = "SG.stand-in-key"
MAIL_SEND_PATH = "/v3/mail/send"
STATS_PATH = "/__stand-in/stats"
RESET_PATH = "/__stand-in/reset"
MAX_PERSONALIZATIONS = 1000
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
EVENTS_PER_POST = 500


@dataclass(frozen=True)
class Accepted:
    """One request the stand-in accepted: its message id and parsed JSON body."""

    message_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hold_s: float = 0.0  # wait this long before answering
    drop: bool = False  # close the connection instead of answering


def mail_send_errors(body: object) -> list[str]:
    """SendGrid-style validation messages for a Mail Send body; empty when it is acceptable.

    Checks only what SendGrid rejects most often: personalizations with recipients (at most
    1,000), a sender, a subject (or template) and content; string-valued ``custom_args`` and
    ``headers``; a dynamic (``d-``) template wherever ``dynamic_template_data`` is used.
    Message-level ``custom_args`` are rejected too, as SendGrid's OpenAPI spec (and so its
    spec mock) types that field as a string.
    """
    if not isinstance(body, dict):
        return ["The request body must be a JSON object."]
    errors = _personalization_errors(body.get("personalizations"))
    if not isinstance(body.get("from"), dict) or not body["from"].get("email"):
        errors.append("The from object must be provided for every email send.")
    template_id = body.get("template_id")
    has_template = bool(template_id)
    if not has_template and not body.get("subject") and not _all_have_subject(body):
        errors.append("The subject is required. You can set it in personalizations or at top.")
    if not has_template and not _content_ok(body.get("content")):
        errors.append("Unless a valid template_id is provided, the content parameter is required.")
    if "custom_args" in body and not isinstance(body["custom_args"], str):
        errors.append("Invalid type. Expected: string, given: object (custom_args).")
    if _uses_dynamic_data(body) and not str(template_id or "").startswith("d-"):
        errors.append("dynamic_template_data can only be used with a dynamic template (d-...).")
    return errors


def _personalization_errors(personalizations: object) -> list[str]:
    if not isinstance(personalizations, list) or not personalizations:
        return ["The personalizations field is required and must have at least one item."]
    if len(personalizations) > MAX_PERSONALIZATIONS:
        return ["The personalizations array cannot contain more than 1000 personalizations."]
    for p in personalizations:
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to or not all(_has_email(t) for t in to):
            return ["Each personalization must have a 'to' array with an email in each entry."]
        if not _strings_only(p.get("custom_args", {})) or not _strings_only(p.get("headers", {})):
            return ["custom_args and headers values must be strings."]
    return []


def _strings_only(mapping: object) -> bool:
    return isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values())


def _uses_dynamic_data(body: dict[str, Any]) -> bool:
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list):
        return False
    return any(isinstance(p, dict) and "dynamic_template_data" in p for p in personalizations)


def _has_email(entry: object) -> bool:
    return isinstance(entry, dict) and bool(entry.get("email"))


def _all_have_subject(body: dict[str, Any]) -> bool:
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return False
    return all(isinstance(p, dict) and p.get("subject") for p in personalizations)


def _content_ok(content: object) -> bool:
    if not isinstance(content, list) or not content:
        return False
    return all(isinstance(c, dict) and c.get("type") and c.get("value") for c in content)


def _errors_body(*messages: str) -> bytes:
    errors = [{"message": m, "field": None, "help": None} for m in messages]
    return json.dumps({"errors": errors}).encode()


def _digest_ids(body: dict[str, Any]) -> list[int]:
    ids = []
    for p in body["personalizations"]:
        value = p.get("custom_args", {}).get("digest_id")
        if isinstance(value, str) and value.lstrip("-").isdigit():
            ids.append(int(value))
    return ids


class SendGridStandIn:
    """A threaded HTTP/1.1 server on 127.0.0.1 that imitates SendGrid Mail Send.

    Parameters
    ----------
    api_key : str
        The only key it accepts as ``Authorization: Bearer <api_key>``.
    failure_rate : float
        Probability that a request (after auth, when nothing is scripted) fails.
    failure_statuses : sequence of int
        Statuses random failures are drawn from.
    seed : int
        Seed of the RNG behind random failures, so a run is reproducible.
    hang_s : float
        Hold back the reply to *every* accepted request this long (a timeout simulation).
    hang_rate, stall_rate : float
        Share of requests accepted-then-held, or held-and-dropped without being accepted,
        each for ``hold_s`` (see the module docstring).
    hold_s : float
        How long ``hang_rate`` / ``stall_rate`` requests are held.
    port : int
        Port to bind; 0 picks a free one.
    webhook_url : str or None
        Where to post events, like SendGrid's Event Webhook; None keeps them in
        :attr:`events` only.
    bounce_emails : sequence of str
        Addresses whose messages bounce (a ``bounce`` event instead of ``delivered``).
    duplicate_event_rate : float
        Probability that an event is posted a second time.
    delivered_delay_s : float
        How long after ``processed`` the ``delivered`` (or ``bounce``) event happens.
    faulty_requests : int or None
        Random failures, hangs and stalls hit only the first this many requests, like an
        incident that ends; None: all of them.
    healthy_requests : int
        The incident starts only after this many requests: a provider failing near the end
        of a run, however fast the run is.
    keep_bodies : bool
        Keep every accepted body (tests); off for long benchmark runs to bound memory.

    Rates and ``hang_s`` are plain attributes and may be changed while running.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        failure_rate: float = 0.0,
        failure_statuses: Sequence[int] = (429, 500, 503),
        seed: int = 0,
        hang_s: float = 0.0,
        hang_rate: float = 0.0,
        stall_rate: float = 0.0,
        hold_s: float = 5.0,
        port: int = 0,
        webhook_url: str | None = None,
        bounce_emails: Sequence[str] = (),
        duplicate_event_rate: float = 0.0,
        delivered_delay_s: float = 0.0,
        faulty_requests: int | None = None,
        healthy_requests: int = 0,
        keep_bodies: bool = True,
    ) -> None:
        self.api_key = api_key
        self.failure_rate = failure_rate
        self.failure_statuses = tuple(failure_statuses)
        self.hang_s = hang_s
        self.hang_rate = hang_rate
        self.stall_rate = stall_rate
        self.hold_s = hold_s
        self.port = port
        self.webhook_url = webhook_url
        self.bounce_emails = frozenset(e.lower() for e in bounce_emails)
        self.duplicate_event_rate = duplicate_event_rate
        self.delivered_delay_s = delivered_delay_s
        self.faulty_requests = faulty_requests
        self.healthy_requests = healthy_requests
        self.keep_bodies = keep_bodies
        self.event_interval_s = 0.2
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._scripted: deque[tuple[int, str | None]] = deque()
        self._accepted: list[Accepted] = []
        self._digest_ids: list[int] = []
        self._requests_accepted = 0
        self._attempts = 0
        self._events: list[dict[str, Any]] = []
        # (due time, sequence, event): a heap, because "delivered" comes after "processed".
        self._outgoing: list[tuple[float, int, dict[str, Any]]] = []
        self._sequence = itertools.count()
        self._webhook_posts = 0
        self._connections = 0
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # Lifecycle -------------------------------------------------------------------------

    def start(self) -> SendGridStandIn:
        """Bind the port and serve (and post events) in background threads."""
        self._server = _Server(self, self.port)
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll
            name="sendgrid-stand-in",
            daemon=True,
        )
        poster = threading.Thread(target=self._post_events, name="stand-in-webhook", daemon=True)
        self._threads = [serve, poster]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Release any held replies, stop serving and posting, and close the socket."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> SendGridStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to pass as the SendGrid ``host``, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("SendGridStandIn is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def public_key(self) -> str:
        """The webhook verification key, base64 DER, as SendGrid's settings page shows it."""
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    # Scripting and inspection ----------------------------------------------------------

    def fail_next(self, status: int, retry_after: str | float | None = None) -> None:
        """Answer the next authorised request with ``status`` (queued; call again for more)."""
        with self._lock:
            self._scripted.append((status, None if retry_after is None else str(retry_after)))

    @property
    def accepted(self) -> list[Accepted]:
        """Every accepted request so far, oldest first (a copy; empty without keep_bodies)."""
        with self._lock:
            return list(self._accepted)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of :attr:`accepted`."""
        return [a.body for a in self.accepted]

    @property
    def attempts(self) -> int:
        """How many Mail Send requests arrived, whatever the answer."""
        with self._lock:
            return self._attempts

    @property
    def connections(self) -> int:
        """How many TCP connections clients opened (keep-alive reuses one)."""
        with self._lock:
            return self._connections

    def count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    @property
    def accepted_digest_ids(self) -> list[int]:
        """The ``digest_id`` of every accepted personalization, duplicates included."""
        with self._lock:
            return list(self._digest_ids)

    def digest_counts(self) -> Counter[int]:
        """How many times each digest id was accepted: all ones means nothing went twice."""
        return Counter(self.accepted_digest_ids)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event generated so far (posted or not)."""
        with self._lock:
            return list(self._events)

    def pending_events(self) -> int:
        """Events not yet delivered to the webhook."""
        with self._lock:
            return len(self._outgoing)

    def stats(self) -> dict[str, Any]:
        """Counts for ``GET /__stand-in/stats`` and the command line."""
        counts = self.digest_counts()
        with self._lock:
            return {
                "attempts": self._attempts,
                "accepted_requests": self._requests_accepted,
                "accepted_digests": sum(counts.values()),
                "unique_digests": len(counts),
                "digests_accepted_twice": sum(1 for n in counts.values() if n > 1),
                "events": len(self._events),
                "events_pending": len(self._outgoing),
                "webhook_posts": self._webhook_posts,
            }

    def reset(self) -> None:
        """Forget everything accepted and counted so far (a benchmark's warm-up, say)."""
        with self._lock:
            self._accepted.clear()
            self._digest_ids.clear()
            self._events.clear()
            self._outgoing.clear()
            self._attempts = self._requests_accepted = self._webhook_posts = 0

    def sign(self, timestamp: str, body: bytes) -> str:
        """SendGrid's signature over ``timestamp + body`` (base64 DER ECDSA P-256/SHA-256)."""
        der = self._key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(der).decode()

    # Request handling ------------------------------------------------------------------

    def respond(self, path: str, headers: Mapping[str, str], raw_body: bytes) -> _Reply:
        """Decide the reply to one POST (``headers`` named in lower case). Called from the
        server's handler threads."""
        if path == RESET_PATH:
            self.reset()
            return _Reply(204)
        if path.split("?")[0] != MAIL_SEND_PATH:
            return _Reply(404, body=_errors_body(f"No route for {path}."))
        with self._lock:
            self._attempts += 1
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _Reply(401, body=_errors_body("The provided authorization grant is invalid."))
        failure = self._pick_failure()
        if failure is not None:
            return failure
        if self._in_incident() and self._draw(self.stall_rate):
            return _Reply(0, hold_s=self.hold_s, drop=True)
        return self._accept(raw_body)

    def _in_incident(self) -> bool:
        into = self._attempts - self.healthy_requests
        return into > 0 and (self.faulty_requests is None or into <= self.faulty_requests)

    def _draw(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _pick_failure(self) -> _Reply | None:
        with self._lock:
            if self._scripted:
                status, retry_after = self._scripted.popleft()
            elif (
                self.failure_rate > 0
                and self._in_incident()
                and self._rng.random() < self.failure_rate
            ):
                status, retry_after = self._rng.choice(self.failure_statuses), None
            else:
                return None
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return _Reply(status, headers, _errors_body(f"Injected failure {status}."))

    def _accept(self, raw_body: bytes) -> _Reply:
        try:
            body = json.loads(raw_body)
        except ValueError:
            return _Reply(400, body=_errors_body("The request body is not valid JSON."))
        errors = mail_send_errors(body)
        if errors:
            return _Reply(400, body=_errors_body(*errors))
        message_id = uuid.uuid4().hex
        events = self._events_for(body, message_id)
        with self._lock:
            self._requests_accepted += 1
            if self.keep_bodies:
                self._accepted.append(Accepted(message_id, body))
            self._digest_ids.extend(_digest_ids(body))
            self._events.extend(events)
            if self.webhook_url is not None:
                for event in events:
                    self._queue(event)
        hold = (
            self.hang_s if self.hang_s > 0 else (self.hold_s if self._draw(self.hang_rate) else 0)
        )
        return _Reply(202, {"X-Message-Id": message_id}, hold_s=hold)

    # Events ------------------------------------------------------------------------------

    def _queue(self, event: dict[str, Any]) -> None:
        # Called with the lock held. An event is posted no earlier than it happened.
        heapq.heappush(self._outgoing, (event["timestamp_f"], next(self._sequence), event))

    def _events_for(self, body: dict[str, Any], message_id: str) -> list[dict[str, Any]]:
        if self.webhook_url is None and not self.keep_bodies:
            return []  # a benchmark run: nobody will read them
        now = time.time()
        events = []
        for n, p in enumerate(body["personalizations"]):
            for recipient in p["to"]:
                email = str(recipient["email"]).lower()
                last = "bounce" if email in self.bounce_emails else "delivered"
                sg_id = f"{message_id}.{n}"
                events.append(self._event("processed", email, now, sg_id, body, p))
                events.append(
                    self._event(last, email, now + self.delivered_delay_s, sg_id, body, p)
                )
        return events

    def _event(
        self,
        kind: str,
        email: str,
        at: float,
        sg_message_id: str,
        body: dict[str, Any],
        personalization: dict[str, Any],
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "email": email,
            "timestamp": int(at),
            "timestamp_f": at,  # removed before posting; orders the queue
            "event": kind,
            "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": sg_message_id,
            "category": body.get("categories", []),
        }
        if kind == "bounce":
            event |= {"type": "bounce", "reason": "550 5.1.1 mailbox does not exist"}
        # SendGrid puts custom arguments at the top level of each event.
        return event | dict(personalization.get("custom_args", {}))

    def _post_events(self) -> None:
        while not self._closing.wait(self.event_interval_s):
            if self.webhook_url is None:
                continue
            batch = self._due_events(time.time())
            if batch and not self._deliver(batch):
                with self._lock:  # SendGrid retries a failed post later
                    for event in batch:
                        self._queue(event)

    def _due_events(self, now: float) -> list[dict[str, Any]]:
        with self._lock:
            batch: list[dict[str, Any]] = []
            while self._outgoing and self._outgoing[0][0] <= now and len(batch) < EVENTS_PER_POST:
                batch.append(heapq.heappop(self._outgoing)[2])
            return batch

    def _deliver(self, batch: list[dict[str, Any]]) -> bool:
        repeats = [e for e in batch if self._draw(self.duplicate_event_rate)]
        wire = [{k: v for k, v in e.items() if k != "timestamp_f"} for e in batch + repeats]
        body = json.dumps(wire).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(
            str(self.webhook_url),
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: self.sign(timestamp, body),
                TIMESTAMP_HEADER: timestamp,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
                ok = 200 <= response.status < 300
        except (urllib.error.URLError, OSError):
            ok = False
        if ok:
            with self._lock:
                self._webhook_posts += 1
        return ok


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True  # a held reply must never keep the test process alive
    allow_reuse_address = True

    def __init__(self, standin: SendGridStandIn, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.standin = standin


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    keep_alive: bool


_REASONS = {s.value: s.phrase for s in HTTPStatus}


class _Handler(socketserver.StreamRequestHandler):
    """HTTP/1.1 with keep-alive, read and written by hand.

    ``http.server`` parsed every request's headers with the e-mail parser and wrote the
    reply in pieces: over half of the stand-in's time per request when measured, which
    made the stand-in, not the code under test, the ceiling of the send benchmark.
    """

    server: _Server
    disable_nagle_algorithm = True  # a reply is one write; never hold it back

    def setup(self) -> None:
        super().setup()
        self.server.standin.count_connection()

    def handle(self) -> None:
        standin = self.server.standin
        while True:
            try:
                request = self._read()
            except (ConnectionError, TimeoutError, ValueError):
                return
            if request is None:
                return
            reply = self._reply(standin, request)
            if reply.hold_s > 0:
                # An Event, not sleep: stop() releases held replies so shutdown is immediate.
                standin._closing.wait(reply.hold_s)  # noqa: SLF001
            if reply.drop or not self._write(reply, request.keep_alive):
                return
            if not request.keep_alive:
                return

    def _reply(self, standin: SendGridStandIn, request: _Request) -> _Reply:
        if request.method == "GET" and request.path == STATS_PATH:
            return _Reply(200, body=json.dumps(standin.stats()).encode())
        if request.method == "POST":
            return standin.respond(request.path, request.headers, request.body)
        return _Reply(404, body=_errors_body(f"No route for {request.path}."))

    def _read(self) -> _Request | None:
        line = self.rfile.readline(65537)
        if not line.strip():
            return None  # the client closed the connection
        method, path, version = line.decode("latin-1").split()
        headers: dict[str, str] = {}
        while True:
            field = self.rfile.readline(65537)
            if field in (b"\r\n", b"\n", b""):
                break
            name, _, value = field.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.rfile.read(int(headers.get("content-length") or 0))
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        return _Request(method, path, headers, body, keep_alive)

    def _write(self, reply: _Reply, keep_alive: bool) -> bool:
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}"]
        head += [f"{name}: {value}" for name, value in reply.headers.items()]
        head += [
            "Content-Type: application/json",
            f"Content-Length: {len(reply.body)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return False  # the client gave up (a timeout test)
        return True


# Command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then print the stats as one JSON line."""
    parser = argparse.ArgumentParser(description="A local SendGrid Mail Send stand-in.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--hang-rate", type=float, default=0.0)
    parser.add_argument("--stall-rate", type=float, default=0.0)
    parser.add_argument("--hold-s", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--public-key-file", default=None, help="write the webhook key here")
    args = parser.parse_args(argv)
    standin = SendGridStandIn(
        args.api_key,
        failure_rate=args.failure_rate,
        hang_rate=args.hang_rate,
        stall_rate=args.stall_rate,
        hold_s=args.hold_s,
        seed=args.seed,
        port=args.port,
        webhook_url=args.webhook_url,
        keep_bodies=False,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with standin:
        if args.public_key_file:
            with open(args.public_key_file, "w") as out:
                out.write(standin.public_key)
        print(json.dumps({"url": standin.url, "api_key": standin.api_key}), flush=True)
        stop.wait()
    print(json.dumps(standin.stats()), flush=True)


if __name__ == "__main__":
    main()
