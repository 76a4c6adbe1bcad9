"""The subscriber's preferences page: edit, preview, pause, download, delete, unsubscribe."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from recsys.db.models import DigestItemRow, DigestRow, InterestRow, PaperRow, UserRow
from recsys.db.session import Database
from recsys.delivery import compose, html_part
from recsys.delivery.backends import FileBackend, confirmation_outbox_key
from recsys.digests.scoring import SKIP_REASON
from recsys.digests.sending import build_email
from recsys.settings import Settings
from recsys.subscribers.links import LinkMaker
from recsys.training.nightly import train
from tests.api.conftest import add_paper, path_of, stored_user
from tests.conftest import NOW
from tests.recsys import world

FORM = {
    "name": "Alice",
    "keywords": "image segmentation\nvision",
    "authors": "",
    "categories": "cs.CV",
    "description": "",
    "seeds": "",
    "library": "",
    "timezone": "Europe/Berlin",
    "send_hour": "6",
    "frequency": "weekly",
    "digest_size": "3",
}


def page_path(links: LinkMaker, user: UserRow) -> str:
    return path_of(links.preferences(user.id, user.created_at))


def interests(db: Database, user_id: int) -> list[tuple[str, str]]:
    with db.session() as session:
        rows = session.scalars(select(InterestRow).where(InterestRow.user_id == user_id))
        return [(row.kind, row.value) for row in rows]


@pytest.fixture()
def trained(db: Database, settings: Settings) -> dict[str, int]:
    """The two-topic world of tests/recsys, with a trained model the API will load."""
    with db.session() as session:
        names = world.load(session)
        train(session, settings, NOW)
    return names


def test_it_shows_the_subscribers_settings(
    client: TestClient, links: LinkMaker, alice: UserRow
) -> None:
    response = client.get(page_path(links, alice))

    assert response.status_code == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "alice@example.org" in response.text
    assert '<textarea id="keywords" name="keywords">nlp</textarea>' in response.text
    assert '<option value="7" selected>07:00</option>' in response.text
    assert "Nothing yet: no model is trained yet" in response.text


def test_saving_the_form_updates_interests_and_schedule(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    response = client.post(page_path(links, alice), data=FORM)

    assert response.status_code == 200
    assert "Saved." in response.text
    assert interests(db, alice.id) == [
        ("keyword", "image segmentation"),
        ("keyword", "vision"),
        ("category", "cs.CV"),
    ]
    user = stored_user(db, alice.id)
    assert (user.timezone, user.send_hour, user.frequency, user.digest_size) == (
        "Europe/Berlin", 6, "weekly", 3,
    )  # fmt: skip


def test_an_invalid_field_is_named_and_nothing_is_saved(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    zone = client.post(page_path(links, alice), data={**FORM, "timezone": "Nowhere/Land"})
    size = client.post(page_path(links, alice), data={**FORM, "digest_size": "500"})
    library = client.post(page_path(links, alice), data={**FORM, "library": '[{"title": ["x"]}]'})

    assert zone.status_code == size.status_code == library.status_code == 422
    assert "timezone: unknown time zone" in zone.text
    assert 'id="timezone" name="timezone" class="invalid"' in zone.text
    assert "digest_size: must be from 1 to 50" in size.text
    assert "library: item 1, field &#39;title&#39;: expected a string" in library.text
    assert interests(db, alice.id) == [("keyword", "nlp")]
    assert stored_user(db, alice.id).timezone == "UTC"


def test_an_interest_edit_shows_at_once_in_the_next_digest_preview(
    client: TestClient, db: Database, settings: Settings, trained: dict[str, int]
) -> None:
    with db.session() as session:
        cy = session.get(UserRow, trained["cy"])
    assert cy is not None
    links = LinkMaker(settings.secret_key, "http://testserver", NOW + timedelta(days=1))
    path = page_path(links, cy)

    before = client.get(path).text
    after = client.post(path, data={**FORM, "keywords": "speech", "digest_size": "4"}).text

    assert _preview_titles(before)[0] in world.VISION + world.AUDIO  # cold: newest first
    assert set(_preview_titles(after)) == set(world.AUDIO[2:])
    assert "Why: Matches your interest “speech”" in after


def _preview_titles(html: str) -> list[str]:
    section = html.split('id="preview"')[1].split("</ol>")[0]
    return re.findall(r'rel="noreferrer">([^<]+)</a>', section)


def test_pausing_and_resuming_redirect_back_with_a_notice(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    path = page_path(links, alice)

    paused = client.post(f"{path}/pause")
    assert paused.status_code == 303 and paused.headers["location"] == f"{path}?done=paused"
    assert stored_user(db, alice.id).status == "paused"
    assert "Digests are paused" in client.get(paused.headers["location"]).text

    resumed = client.post(f"{path}/resume")
    assert resumed.headers["location"] == f"{path}?done=resumed"
    assert stored_user(db, alice.id).status == "active"


def test_a_notice_is_never_echoed_from_the_query_string(
    client: TestClient, links: LinkMaker, alice: UserRow
) -> None:
    response = client.get(page_path(links, alice), params={"done": "<script>x</script>"})

    assert response.status_code == 200
    assert "<script>x" not in response.text and 'class="notice"' not in response.text


def test_the_data_download_is_a_json_attachment(
    client: TestClient, links: LinkMaker, alice: UserRow, digest: DigestRow
) -> None:
    response = client.get(f"{page_path(links, alice)}/data")

    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert data["profile"]["email"] == "alice@example.org"
    assert data["digests"][0]["id"] == digest.id


def test_deleting_needs_the_box_ticked_then_erases_the_account(
    client: TestClient, db: Database, settings: Settings, links: LinkMaker, alice: UserRow
) -> None:
    path = page_path(links, alice)
    outbox = FileBackend(settings.outbox_dir)
    message = EmailMessage()
    message.set_content("your confirmation")
    message.add_alternative("<p>confirm</p>", subtype="html")
    outbox.send(message, digest_id=confirmation_outbox_key(alice.id))

    unticked = client.post(f"{path}/delete", data={})
    assert unticked.status_code == 422
    assert stored_user(db, alice.id).email == "alice@example.org"

    deleted = client.post(f"{path}/delete", data={"confirm": "yes"})
    assert deleted.status_code == 200
    assert "everything we kept about it is gone" in deleted.text
    with db.session() as session:
        assert session.get(UserRow, alice.id) is None
    assert list(settings.outbox_dir.iterdir()) == []
    assert client.get(path).status_code == 404


def test_the_page_unsubscribes_with_the_one_click_url(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    page = client.get(page_path(links, alice)).text
    [unsubscribe_url] = re.findall(r'action="(/unsubscribe/[^"]+)"', page)

    response = client.post(unsubscribe_url)

    assert response.status_code == 200
    assert stored_user(db, alice.id).status == "unsubscribed"
    assert "Subscribe again" in client.get(page_path(links, alice)).text


@pytest.mark.parametrize("suffix", ["", "/data", "/pause"])
def test_a_bad_or_misused_token_is_a_400_page(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow, suffix: str
) -> None:
    click = path_of(links.click(alice.id, 1, 1)).rpartition("/")[2]
    unsubscribe = path_of(links.unsubscribe(alice.id)).rpartition("/")[2]

    for token in (click, unsubscribe, "not-a-token"):
        method = client.post if suffix == "/pause" else client.get
        response = method(f"/preferences/{token}{suffix}")
        assert response.status_code == 400
        assert "location" not in response.headers
    assert stored_user(db, alice.id).status == "active"


def test_the_digest_e_mail_links_to_the_preferences_page(
    client: TestClient,
    db: Database,
    settings: Settings,
    alice: UserRow,
    paper: PaperRow,
    digest: DigestRow,
) -> None:
    from recsys.db.models import DigestItemRow

    with db.session() as session:
        session.add(DigestItemRow(digest_id=digest.id, paper_id=paper.id, position=0, score=1.0))
    with db.session() as session:
        email = build_email(session, settings, digest.id, NOW)
    assert email is not None and email.preferences_url is not None
    html = html_part(compose(email, settings.from_email, now=NOW))

    assert f'href="{email.preferences_url}"' in html
    assert client.get(path_of(email.preferences_url)).status_code == 200
    assert client.post(path_of(email.unsubscribe_url)).status_code == 200


@pytest.mark.parametrize(
    "url", ["javascript:alert(document.domain)//", "data:text/html,<script>x</script>", "//evil"]
)
def test_a_stored_link_that_is_not_http_is_shown_as_plain_text(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow, url: str
) -> None:
    hostile = add_paper(db, "Hostile Paper", url=url)
    fine = add_paper(db, "Fine Paper")
    with db.session() as session:
        digest = DigestRow(
            user_id=alice.id, period="2026-11-20", status="sent", sent_at=NOW,
            created_at=NOW, updated_at=NOW,
        )  # fmt: skip
        session.add(digest)
        session.flush()
        for position, paper in enumerate([hostile, fine]):
            session.add(
                DigestItemRow(
                    digest_id=digest.id,
                    paper_id=paper.id,
                    position=position,
                    score=1.0,
                    reason="because",
                )  # fmt: skip
            )

    page = client.get(page_path(links, alice))

    assert page.status_code == 200
    assert "<li>Hostile Paper" in page.text
    assert f'href="{fine.url}"' in page.text
    hrefs = re.findall(r'href="([^"]*)"', page.text)
    assert all(h.startswith(("/", "https://")) for h in hrefs)
    assert not any(h.startswith("//") for h in hrefs)


@pytest.mark.parametrize("seed", ["9" * 23, str(2**63), "0", "9" * 5000])
def test_a_seed_id_out_of_range_is_a_422_naming_it(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow, seed: str
) -> None:
    response = client.post(page_path(links, alice), data={**FORM, "remove_seed": seed})

    assert response.status_code == 422
    assert "remove_seed: " in response.text
    assert interests(db, alice.id) == [("keyword", "nlp")]


def test_an_empty_post_changes_nothing(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    client.post(page_path(links, alice), data=FORM)
    before = stored_user(db, alice.id)

    response = client.post(
        page_path(links, alice),
        content=b"",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 200 and "Saved." in response.text
    after = stored_user(db, alice.id)
    assert interests(db, alice.id) == [
        ("keyword", "image segmentation"), ("keyword", "vision"), ("category", "cs.CV"),
    ]  # fmt: skip
    schedule = ("name", "timezone", "send_hour", "frequency", "digest_size", "next_digest_at")
    assert [getattr(after, f) for f in schedule] == [getattr(before, f) for f in schedule]


def test_posting_some_fields_changes_only_those(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    client.post(page_path(links, alice), data=FORM)

    client.post(page_path(links, alice), data={"keywords": "graphs", "send_hour": "9"})

    assert sorted(interests(db, alice.id)) == [("category", "cs.CV"), ("keyword", "graphs")]
    user = stored_user(db, alice.id)
    assert (user.name, user.send_hour, user.timezone, user.digest_size) == (
        "Alice", 9, "Europe/Berlin", 3,
    )  # fmt: skip


def test_the_strictness_select_saves_shows_and_exports_the_choice(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    page = client.get(page_path(links, alice)).text
    assert '<option value="normal" selected>Normal</option>' in page

    saved = client.post(page_path(links, alice), data={"strictness": "fewer"})

    assert saved.status_code == 200
    assert '<option value="fewer" selected>Fewer: only close matches</option>' in saved.text
    assert stored_user(db, alice.id).strictness == "fewer"
    data = client.get(page_path(links, alice) + "/data").json()
    assert data["profile"]["strictness"] == "fewer"


def test_a_post_without_strictness_keeps_it_and_a_bad_one_is_named(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    client.post(page_path(links, alice), data={"strictness": "more"})

    client.post(page_path(links, alice), data={"send_hour": "9"})
    bad = client.post(page_path(links, alice), data={"strictness": "loose"})

    assert stored_user(db, alice.id).strictness == "more"
    assert bad.status_code == 422
    assert "strictness: must be one of fewer, normal, more" in bad.text
    assert 'id="strictness" name="strictness" class="invalid"' in bad.text


def test_a_skipped_day_is_noted_on_the_page_until_a_digest_is_sent(
    client: TestClient, db: Database, links: LinkMaker, alice: UserRow
) -> None:
    with db.session() as session:
        skipped = DigestRow(
            user_id=alice.id, period="2026-11-20", status="skipped", created_at=NOW,
            updated_at=NOW, reason=SKIP_REASON,
        )  # fmt: skip
        session.add(skipped)
    note = "Nothing new cleared your bar on 2026-11-20."
    assert note in client.get(page_path(links, alice)).text

    with db.session() as session:
        later = NOW + timedelta(days=1)
        session.add(
            DigestRow(
                user_id=alice.id,
                period="2026-11-21",
                status="sent",
                created_at=later,
                updated_at=later,
                sent_at=later,
            )  # fmt: skip
        )
    assert note not in client.get(page_path(links, alice)).text
