"""The subscriber's JSON API, authorised by the token of their preferences link."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient

from recsys.db.models import DigestRow, UserRow
from recsys.db.session import Database
from recsys.delivery.backends import FileBackend, confirmation_outbox_key, link_outbox_key
from recsys.settings import Settings
from recsys.subscribers.links import LinkMaker
from tests.api.conftest import path_of, stored_user


def bearer(links: LinkMaker, user: UserRow) -> dict[str, str]:
    token = path_of(links.preferences(user.id, user.created_at)).rpartition("/")[2]
    return {"Authorization": f"Bearer {token}"}


def test_it_needs_the_preferences_token(
    client: TestClient, links: LinkMaker, alice: UserRow
) -> None:
    click = path_of(links.click(alice.id, 1, 1)).rpartition("/")[2]

    missing = client.get("/me")
    wrong_purpose = client.get("/me", headers={"Authorization": f"Bearer {click}"})
    garbage = client.get("/me", headers={"Authorization": "Bearer nope"})
    admin_key = client.get("/me", headers={"X-API-Key": "test-admin-key"})

    assert missing.status_code == wrong_purpose.status_code == garbage.status_code == 401
    assert admin_key.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "not 'preferences'" in wrong_purpose.json()["detail"]


def test_it_shows_the_subscription(client: TestClient, links: LinkMaker, alice: UserRow) -> None:
    response = client.get("/me", headers=bearer(links, alice))

    assert response.status_code == 200
    body = response.json()
    assert (body["email"], body["status"], body["send_hour"]) == ("alice@example.org", "active", 7)
    assert body["interests"] == [{"kind": "keyword", "value": "nlp"}]
    assert body["seeds"] == []


def test_it_updates_settings_and_names_an_invalid_field(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    changes = {
        "send_hour": 9,
        "interests": [{"kind": "author", "value": "Yoshua Bengio"}],
        "add_seeds": ["A title we do not have"],
        "paused": True,
    }

    updated = client.patch("/me", headers=bearer(links, alice), json=changes)
    bad_zone = client.patch("/me", headers=bearer(links, alice), json={"timezone": "Nope/No"})
    bad_size = client.patch("/me", headers=bearer(links, alice), json={"digest_size": 0})

    assert updated.status_code == 200
    body = updated.json()
    assert (body["subscriber"]["send_hour"], body["subscriber"]["status"]) == (9, "paused")
    assert body["subscriber"]["interests"] == [
        {"kind": "author", "value": "Yoshua Bengio"},
        {"kind": "text", "value": "A title we do not have"},
    ]
    assert body["seeds"]["as_text"] == ["A title we do not have"]
    assert bad_zone.status_code == bad_size.status_code == 422
    assert bad_zone.json()["detail"][0]["loc"] == ["body", "timezone"]
    assert bad_size.json()["detail"][0]["loc"] == ["body", "digest_size"]
    assert stored_user(db, alice.id).timezone == "UTC"


def _mail_alice_and_bob(settings: Settings, alice: UserRow, digest: DigestRow) -> None:
    outbox = FileBackend(settings.outbox_dir)
    message = EmailMessage()
    message.set_content("a copy of what we sent")
    message.add_alternative("<p>a copy</p>", subtype="html")
    for key in (digest.id, confirmation_outbox_key(alice.id), link_outbox_key(alice.id)):
        outbox.send(message, digest_id=key)
    outbox.send(message, digest_id=digest.id + 1)  # somebody else's digest


def test_it_exports_previews_and_deletes(
    client: TestClient,
    db: Database,
    settings: Settings,
    links: LinkMaker,
    alice: UserRow,
    digest: DigestRow,
) -> None:
    auth = bearer(links, alice)
    _mail_alice_and_bob(settings, alice, digest)

    export = client.get("/me/export", headers=auth)
    preview = client.get("/me/preview", headers=auth)
    deleted = client.delete("/me", headers=auth)

    assert export.status_code == 200
    assert export.json()["digests"][0]["id"] == digest.id
    assert preview.status_code == 200
    assert preview.json() == {
        "items": [],
        "note": "no model is trained yet, so there is nothing to rank",
    }
    assert deleted.status_code == 204
    assert client.get("/me", headers=auth).status_code == 404
    with db.session() as session:
        assert session.get(UserRow, alice.id) is None
    assert sorted(p.name for p in settings.outbox_dir.iterdir()) == [
        f"digest-{digest.id + 1}.eml", f"digest-{digest.id + 1}.html",
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["Alice\r\nBcc: victim@example.org", "Alice\nX", "Ali\u2028ce"])
def test_a_name_with_a_line_break_is_a_422_naming_it(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow, name: str
) -> None:
    changed = client.patch("/me", json={"name": name}, headers=bearer(links, alice))
    signed_up = client.post("/subscriptions", json={"email": "eve@example.org", "name": name})
    created = client.post(
        "/users",
        json={"email": "mallory@example.org", "name": name},
        headers={"X-API-Key": "test-admin-key"},
    )

    for response in (changed, signed_up, created):
        assert response.status_code == 422
        [detail] = response.json()["detail"]
        assert detail["loc"] == ["body", "name"] and "one line" in detail["msg"]
    assert stored_user(db, alice.id).name == "Alice"


def test_library_entries_that_could_not_be_read_are_listed_back(
    client: TestClient, links: LinkMaker, alice: UserRow
) -> None:
    library = "@set{group, entryset={a,b}}\n@article{ok, title={A Readable Paper}}\n"

    updated = client.patch("/me", headers=bearer(links, alice), json={"library": library})

    assert updated.status_code == 200
    seeds = updated.json()["seeds"]
    assert seeds["as_text"] == ["A Readable Paper"]
    assert len(seeds["skipped"]) == 1 and seeds["skipped"][0].startswith("line 1:")
