"""Digest e-mail: composition (:mod:`.compose`), template-mode batches (:mod:`.batch`) and
delivery backends (:mod:`.backends`)."""

from recsys.delivery.backends import (
    BatchEmailBackend,
    DeliveryError,
    EmailBackend,
    FileBackend,
    SendGridBackend,
    SendGridTemplateBackend,
    SendResult,
    SmtpBackend,
    backend_from_settings,
    classify_http_failure,
    make_backend,
    sendgrid_payload,
    single_backend_from_settings,
)
from recsys.delivery.batch import MAX_PERSONALIZATIONS, template_payload, template_version
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
    "MAX_PERSONALIZATIONS",
    "BatchEmailBackend",
    "DeliveryError",
    "DigestEmail",
    "DigestLine",
    "EmailBackend",
    "FileBackend",
    "SendGridBackend",
    "SendGridTemplateBackend",
    "SendResult",
    "SmtpBackend",
    "backend_from_settings",
    "single_backend_from_settings",
    "classify_http_failure",
    "compose",
    "html_part",
    "make_backend",
    "sendgrid_payload",
    "template_payload",
    "template_version",
    "text_part",
]
