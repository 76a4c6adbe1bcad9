"""Digest e-mail: composition (:mod:`.compose`) and delivery backends (:mod:`.backends`)."""

from recsys.delivery.backends import (
    DeliveryError,
    EmailBackend,
    FileBackend,
    SendGridBackend,
    SendResult,
    SmtpBackend,
    classify_http_failure,
    make_backend,
    sendgrid_payload,
)
from recsys.delivery.compose import (
    MAX_MESSAGE_BYTES,
    DigestEmail,
    DigestLine,
    compose,
    html_part,
    text_part,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "DeliveryError",
    "DigestEmail",
    "DigestLine",
    "EmailBackend",
    "FileBackend",
    "SendGridBackend",
    "SendResult",
    "SmtpBackend",
    "classify_http_failure",
    "compose",
    "html_part",
    "make_backend",
    "sendgrid_payload",
    "text_part",
]
