"""Property-based run over the OpenAPI description with every default schemathesis check.

``case.call_and_validate`` runs schemathesis's whole default set on every operation:
not_a_server_error, status_code_conformance, content_type_conformance,
response_headers_conformance, response_schema_conformance, negative_data_rejection,
positive_data_acceptance, missing_required_header, unsupported_method,
allow_header_conformance and ignored_auth. (use_after_free, ensure_resource_availability and
object_level_authorization are in the set too, but judge sequences of calls linked by the
schema, so they find nothing to judge in a per-operation run.) Two checks are left out for
single requests only, each for the reason given in :func:`excluded_for`.

Bounded (a few examples per operation, no deadline) so the whole run stays under a minute.
Half of the requests carry valid signed tokens and the admin key, so the fuzzer gets past
the door and into the forms, the sign-up and the subscriber's own API. This in-process run
is what CI runs (with the rest of the suite); a ``schemathesis run`` against a served port
would test the same app through the same middleware."""

from __future__ import annotations

import os
import zlib
from base64 import b64encode
from datetime import timedelta

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckFunction
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.app import create_app
from recsys.db.models import DigestRow, PaperRow, UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.subscribers.accounts import SubscriberError, read_library
from recsys.subscribers.links import LinkMaker
from tests.api.conftest import Tasks, path_of
from tests.conftest import NOW

MAX_EXAMPLES = 8


def _authenticated(case: schemathesis.Case) -> bool:
    """Half the cases carry valid credentials, chosen by the case's own content (not by a
    counter), so which ones do is the same whatever runs before them."""
    text = repr((case.method, case.path, case.path_parameters, case.query, case.body))
    return zlib.crc32(text.encode()) % 2 == 0


@pytest.fixture()
def api_schema(db: Database, settings: Settings, tasks: Tasks) -> schemathesis.BaseSchema:
    app = create_app(fully_configured(settings), clock=lambda: NOW, enqueue=tasks)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def fully_configured(settings: Settings) -> Settings:
    """Every optional endpoint switched on: one left off answers 503 by design."""
    if "sendgrid_webhook_public_key" not in Settings.model_fields:
        return settings
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return settings.model_copy(update={"sendgrid_webhook_public_key": b64encode(der).decode()})


@pytest.fixture()
def tokens(
    settings: Settings, alice: UserRow, paper: PaperRow, digest: DigestRow
) -> dict[str, str]:
    """A valid token for each kind of link, keyed by the first part of its path."""
    links = LinkMaker(settings.secret_key, "http://testserver", NOW + timedelta(days=1))
    urls = [
        links.click(alice.id, paper.id, digest.id),
        links.more(alice.id, paper.id, digest.id),
        links.less(alice.id, paper.id, digest.id),
        links.unsubscribe(alice.id, alice.created_at),
        links.confirm(alice.id, alice.created_at),
        links.preferences(alice.id, alice.created_at),
    ]
    return {path_of(url).split("/")[1]: path_of(url).rpartition("/")[2] for url in urls}


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the work tree; the run is small enough to repeat
    # The same examples every run: CI must not pass or fail by the draw (fresh draws are
    # for a fuzzing run: PAPERBOY_FUZZ_RANDOM=1).
    derandomize=not os.environ.get("PAPERBOY_FUZZ_RANDOM"),
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_the_api_fail(
    case: schemathesis.Case, tokens: dict[str, str], admin: dict[str, str]
) -> None:
    headers = {}
    if _authenticated(case):
        headers = {**admin, "Authorization": f"Bearer {tokens['preferences']}"}
        if "token" in (case.path_parameters or {}):
            case.path_parameters["token"] = tokens[case.path.split("/")[1]]
    excluded = excluded_for(case, tokens, authenticated=bool(headers))
    case.call_and_validate(headers=headers, excluded_checks=excluded)


def excluded_for(
    case: schemathesis.Case, tokens: dict[str, str], *, authenticated: bool
) -> list[CheckFunction]:
    """The checks that cannot apply to this one request, each for the reason given."""
    excluded = []
    token = (case.path_parameters or {}).get("token")
    if token is not None and token not in tokens.values():
        # A link's token is a signature the generator cannot forge: any string it makes is
        # schema-valid and rightly refused (400), as a wrong password is. The other checks
        # (no 5xx, the documented 400 page, its content type and headers) still run.
        excluded.append(positive_data_acceptance)
    if _unreadable_library(case.body):
        # A pasted library is a BibTeX or CSL-JSON document, whose grammar a JSON Schema
        # string cannot carry: one the parser refuses is rightly a 422 naming its line.
        excluded.append(positive_data_acceptance)
    if authenticated and _negates_a_header(case):
        # The generator removed or broke a header (the API key, say) and this test then
        # put valid credentials over it: the request sent is not the negative one judged.
        excluded.append(negative_data_rejection)
    return excluded


def _unreadable_library(body: object) -> bool:
    library = body.get("library") if isinstance(body, dict) else None
    if not isinstance(library, str) or not library.strip():
        return False
    try:
        read_library(library)
    except SubscriberError:
        return True
    return False


def _negates_a_header(case: schemathesis.Case) -> bool:
    if case.meta is None or not case.meta.generation.mode.is_negative:
        return False
    data = case.meta.phase.data
    locations = {data.parameter_location, *(m.parameter_location for m in data.mutations)}
    return ParameterLocation.HEADER in locations
