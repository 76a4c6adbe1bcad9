"""An SMTP sink: accepts every message and keeps each as one ``.eml`` file in a folder.

The compose stack's ``mailsink`` profile runs it (``python -m recsys.testing.smtp_sink``) so
that ``.ci/compose-test``, or an operator trying the stack, can read what the workers sent
over real SMTP without a relay. It speaks what smtplib needs (EHLO/HELO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT); there is no TLS and no authentication, so never expose it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socketserver
import sys
import threading
import time
from pathlib import Path


class SmtpSink(socketserver.ThreadingTCPServer):
    """Listens on ``(host, port)`` and writes each accepted message to ``folder``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, folder: Path) -> None:
        super().__init__((host, port), _Session)
        self.folder = folder
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def store(self, sender: str, recipients: list[str], body: bytes) -> Path:
        """Write one message atomically (a reader never sees half a file)."""
        with self._lock:
            number = next(self._numbers)
        path = self.folder / f"{time.time_ns()}-{number:06d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(body)
        os.replace(tmp, path)
        print(f"stored {path.name}: {sender} -> {', '.join(recipients)}", flush=True)
        return path


class _Session(socketserver.StreamRequestHandler):
    server: SmtpSink

    def handle(self) -> None:
        self._say("220 paperboy-smtp-sink ESMTP")
        sender, recipients = "", list[str]()
        while line := self.rfile.readline():
            verb, _, arg = line.decode("utf-8", "replace").strip().partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self._say("250-paperboy-smtp-sink\r\n250 8BITMIME")
            elif verb == "MAIL":
                sender, recipients = arg.partition(":")[2].strip(), []
                self._say("250 OK")
            elif verb == "RCPT":
                recipients.append(arg.partition(":")[2].strip())
                self._say("250 OK")
            elif verb == "DATA":
                self._say("354 End data with <CR><LF>.<CR><LF>")
                self.server.store(sender, recipients, self._read_body())
                self._say("250 OK: stored")
            elif verb == "QUIT":
                self._say("221 Bye")
                return
            else:  # HELO, RSET, NOOP and anything else: harmless to accept
                self._say("250 OK")

    def _read_body(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
            # RFC 5321 4.5.2: the client doubled every leading dot; undo it.
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)

    def _say(self, reply: str) -> None:
        self.wfile.write(reply.encode("ascii") + b"\r\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container's sink
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path("mail"), help="where .eml files go")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    with SmtpSink(args.host, args.port, args.dir) as server:
        print(f"smtp sink on {args.host}:{args.port}, messages in {args.dir}", file=sys.stderr)
        server.serve_forever()


if __name__ == "__main__":
    main()
