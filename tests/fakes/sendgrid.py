"""The SendGrid stand-in: a local HTTP server speaking enough of v3 Mail Send for our tests.

It is the one fake for the SendGrid seam; unit tests, fault-injection tests and benchmarks all
use it, so the real :class:`recsys.delivery.backends.SendGridBackend` runs unchanged against
it (real sockets, real timeouts).

What it does, for ``POST /v3/mail/send``, in this order:

1. ``Authorization: Bearer <api_key>`` must match, else **401**.
2. A scripted failure (:meth:`SendGridStandIn.fail_next`), else a random one with
   probability ``failure_rate`` (status drawn from ``failure_statuses`` by a seeded RNG).
3. The body is checked like SendGrid checks it, minimally (:func:`mail_send_errors`),
   else **400** with SendGrid's ``{"errors": [...]}`` shape.
4. The body is recorded in :attr:`SendGridStandIn.accepted`, then, if ``hang_s`` is set, the
   reply is held back that long. That is the "accepted, but the client timed out" case: the
   message counts as sent although the client never learns it.
5. **202** with a unique ``X-Message-Id`` header and an empty body.

Other paths answer 404. Example::

    with SendGridStandIn() as sg:
        backend = SendGridBackend(sg.api_key, sg.url, timeout_s=2.0)
        backend.send(message, digest_id=1)
        assert sg.bodies[0]["personalizations"][0]["custom_args"] == {"digest_id": "1"}
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

DEFAULT_API_KEY = "SG.stand-in-key"
MAIL_SEND_PATH = "/v3/mail/send"


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


def mail_send_errors(body: object) -> list[str]:
    """SendGrid-style validation messages for a Mail Send body; empty when it is acceptable.

    Checks only what SendGrid rejects most often: personalizations with recipients, a sender,
    a subject (or template) and content. Message-level ``custom_args`` are rejected too, as
    SendGrid's OpenAPI spec (and so its spec mock) types that field as a string.
    """
    if not isinstance(body, dict):
        return ["The request body must be a JSON object."]
    errors = _personalization_errors(body.get("personalizations"))
    if not isinstance(body.get("from"), dict) or not body["from"].get("email"):
        errors.append("The from object must be provided for every email send.")
    has_template = bool(body.get("template_id"))
    if not has_template and not body.get("subject") and not _all_have_subject(body):
        errors.append("The subject is required. You can set it in personalizations or at top.")
    if not has_template and not _content_ok(body.get("content")):
        errors.append("Unless a valid template_id is provided, the content parameter is required.")
    if "custom_args" in body and not isinstance(body["custom_args"], str):
        errors.append("Invalid type. Expected: string, given: object (custom_args).")
    return errors


def _personalization_errors(personalizations: object) -> list[str]:
    if not isinstance(personalizations, list) or not personalizations:
        return ["The personalizations field is required and must have at least one item."]
    for p in personalizations:
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to or not all(_has_email(t) for t in to):
            return ["Each personalization must have a 'to' array with an email in each entry."]
    return []


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


class SendGridStandIn:
    """A threaded HTTP server on 127.0.0.1 (free port) that imitates SendGrid Mail Send.

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
        Hold back the reply to each accepted request this long (a timeout simulation).

    ``failure_rate`` and ``hang_s`` are plain attributes and may be changed while running.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        failure_rate: float = 0.0,
        failure_statuses: Sequence[int] = (429, 500, 503),
        seed: int = 0,
        hang_s: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.failure_rate = failure_rate
        self.failure_statuses = tuple(failure_statuses)
        self.hang_s = hang_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._scripted: deque[tuple[int, str | None]] = deque()
        self._accepted: list[Accepted] = []
        self._attempts = 0
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle -------------------------------------------------------------------------

    def start(self) -> SendGridStandIn:
        """Bind a free port and serve in a background thread."""
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll
            name="sendgrid-stand-in",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release any held replies, stop serving and close the socket."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

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

    # Scripting and inspection ----------------------------------------------------------

    def fail_next(self, status: int, retry_after: str | float | None = None) -> None:
        """Answer the next authorised request with ``status`` (queued; call again for more)."""
        with self._lock:
            self._scripted.append((status, None if retry_after is None else str(retry_after)))

    @property
    def accepted(self) -> list[Accepted]:
        """Every accepted request so far, oldest first (a copy)."""
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

    # Request handling ------------------------------------------------------------------

    def respond(self, path: str, headers: Message, raw_body: bytes) -> _Reply:
        """Decide the reply to one POST. Called from the server's handler threads."""
        if path.split("?")[0] != MAIL_SEND_PATH:
            return _Reply(404, body=_errors_body(f"No route for {path}."))
        with self._lock:
            self._attempts += 1
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return _Reply(401, body=_errors_body("The provided authorization grant is invalid."))
        failure = self._pick_failure()
        if failure is not None:
            return failure
        return self._accept(raw_body)

    def _pick_failure(self) -> _Reply | None:
        with self._lock:
            if self._scripted:
                status, retry_after = self._scripted.popleft()
            elif self.failure_rate > 0 and self._rng.random() < self.failure_rate:
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
        with self._lock:
            self._accepted.append(Accepted(message_id, body))
        if self.hang_s > 0:
            # An Event, not sleep: stop() releases held replies so shutdown is immediate.
            self._closing.wait(self.hang_s)
        return _Reply(202, {"X-Message-Id": message_id})


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a held reply must never keep the test process alive

    def __init__(self, standin: SendGridStandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        length = int(self.headers.get("Content-Length") or 0)
        reply = self.server.standin.respond(self.path, self.headers, self.rfile.read(length))
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nobody is left to answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass  # keep test output clean
