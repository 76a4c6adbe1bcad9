"""Stand-ins for outside paper sources over real HTTP: arXiv OAI-PMH, bioRxiv, feeds.

Each serves a corpus the test (or benchmark) gives it with the source's own paging, and
can be told to misbehave on the next requests (a busy 503 with ``Retry-After``, a broken
document, any status), which are queued ahead of the normal answers::

    with FakeOai(oai_records(2500), page_size=1000) as oai:
        oai.fail_next(busy(retry_after="2"))
        ...  # harvest from oai.base_url: 3 pages, one 503 first
        assert oai.params()[-1] == {"verb": "ListRecords", "resumptionToken": "2000"}

The arXiv API stand-in is :class:`recsys.testing.arxiv.FakeArxiv`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from xml.sax.saxutils import escape

from recsys.testing.http import Reply, StandIn

XML = "text/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"


def busy(retry_after: str | None = "1", status: int = 503) -> Reply:
    """A busy answer, with ``Retry-After`` unless it is None."""
    headers = {"Content-Type": "text/plain"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Reply(status, "busy, try again later", headers)


def broken(body: str = "<OAI-PMH><ListRecords><record>", content_type: str = XML) -> Reply:
    """A 200 answer whose document is cut off (a proxy dropped the connection, say)."""
    return Reply(200, body, {"Content-Type": content_type})


# arXiv OAI-PMH ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OaiRecord:
    """One record as arXiv's OAI-PMH interface lists it (metadataPrefix=arXiv)."""

    arxiv_id: str
    title: str
    datestamp: str = "2026-11-20"
    set_spec: str = "cs"
    abstract: str = "An abstract."
    authors: tuple[tuple[str, str], ...] = (("Lovelace", "Ada"),)  # (keyname, forenames)
    categories: str = "cs.LG stat.ML"
    created: str = "2026-11-19"
    updated: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    comments: str | None = None
    deleted: bool = False


def oai_records(
    count: int, *, start: date = date(2026, 11, 1), set_spec: str = "cs"
) -> list[OaiRecord]:
    """``count`` distinct records, their datestamps a day apart in blocks of 1,000."""
    return [
        OaiRecord(
            arxiv_id=f"2611.{n:05d}",
            title=f"Harvested paper {n} on topic {n % 97}",
            datestamp=(start + timedelta(days=n // 1000)).isoformat(),
            set_spec=set_spec,
            abstract=f"We study problem {n % 89} with method {n % 31} and report results.",
        )
        for n in range(1, count + 1)
    ]


def oai_record_xml(record: OaiRecord) -> str:
    status = ' status="deleted"' if record.deleted else ""
    header = (
        f"<header{status}><identifier>oai:arXiv.org:{record.arxiv_id}</identifier>"
        f"<datestamp>{record.datestamp}</datestamp><setSpec>{record.set_spec}</setSpec></header>"
    )
    if record.deleted:
        return f"<record>{header}</record>"
    authors = "".join(
        f"<author><keyname>{escape(k)}</keyname><forenames>{escape(f)}</forenames></author>"
        for k, f in record.authors
    )
    optional = "".join(
        f"<{tag}>{escape(value)}</{tag}>"
        for tag, value in (
            ("updated", record.updated),
            ("comments", record.comments),
            ("journal-ref", record.journal_ref),
            ("doi", record.doi),
        )
        if value
    )
    return (
        f'<record>{header}<metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/">'
        f"<id>{record.arxiv_id}</id><created>{record.created}</created>"
        f"<authors>{authors}</authors><title>{escape(record.title)}</title>"
        f"<categories>{record.categories}</categories>{optional}"
        f"<abstract>{escape(record.abstract)}</abstract></arXiv></metadata></record>"
    )


def list_records_xml(
    records: list[OaiRecord], token: str | None = None, *, cursor: int = 0, total: int | None = None
) -> str:
    """A ``ListRecords`` answer; ``token`` "" writes the empty token of a last page."""
    resumption = ""
    if token is not None:
        size = total if total is not None else len(records)
        resumption = (
            f'<resumptionToken cursor="{cursor}" completeListSize="{size}">'
            f"{escape(token)}</resumptionToken>"
        )
    body = "\n".join(oai_record_xml(record) for record in records)
    return _oai_document(f"<ListRecords>\n{body}\n{resumption}</ListRecords>")


def oai_error_xml(code: str, message: str) -> str:
    return _oai_document(f'<error code="{code}">{escape(message)}</error>')


def _oai_document(content: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">\n'
        "<responseDate>2026-11-21T07:00:00Z</responseDate>\n"
        '<request verb="ListRecords">http://127.0.0.1/oai</request>\n'
        f"{content}\n</OAI-PMH>\n"
    )


class FakeOai(StandIn):
    """arXiv's OAI-PMH ``ListRecords``: filters by ``set`` and ``from``, pages by token.

    The resumption token is the offset of the next page, so requests are easy to read back.
    A list nothing matches gets ``noRecordsMatch``; a request naming no metadataPrefix or
    another one gets the protocol's error.
    """

    path = "/oai"

    def __init__(self, records: list[OaiRecord], page_size: int = 1000) -> None:
        super().__init__()
        self.records = list(records)
        self.page_size = page_size
        self._lists: dict[str, list[OaiRecord]] = {}
        # Rendered pages, kept: a benchmark asks for the same pages again, and rendering them
        # in this process would be counted against the harvest it measures.
        self._rendered: dict[tuple[str, int], str] = {}

    def respond(self, path: str, params: dict[str, str]) -> Reply:
        if params.get("verb") != "ListRecords":
            return _xml(oai_error_xml("badVerb", "only ListRecords is served here"))
        if "resumptionToken" in params:
            return self._resume(params["resumptionToken"])
        if params.get("metadataPrefix") != "arXiv":
            return _xml(oai_error_xml("cannotDisseminateFormat", "metadataPrefix must be arXiv"))
        since = params.get("from", "")
        chosen = [
            r
            for r in self.records
            if r.set_spec == params.get("set", r.set_spec) and r.datestamp >= since
        ]
        if not chosen:
            return _xml(oai_error_xml("noRecordsMatch", "no records match"))
        key = f"{params.get('set', '')}|{since}"
        if self._lists.get(key) != chosen:
            self._lists[key] = chosen
            self._rendered = {k: v for k, v in self._rendered.items() if k[0] != key}
        return self._page(key, 0)

    def _resume(self, token: str) -> Reply:
        key, _, offset = token.rpartition("|")
        if key not in self._lists or not offset.isdigit():
            return _xml(oai_error_xml("badResumptionToken", f"unknown token {token!r}"))
        return self._page(key, int(offset))

    def _page(self, key: str, offset: int) -> Reply:
        if (key, offset) not in self._rendered:
            listing = self._lists[key]
            end = offset + self.page_size
            token = f"{key}|{end}" if end < len(listing) else ""
            self._rendered[key, offset] = list_records_xml(
                listing[offset:end], token if offset or token else None,
                cursor=offset, total=len(listing),
            )  # fmt: skip
        return _xml(self._rendered[key, offset])


def _xml(document: str) -> Reply:
    return Reply(200, document, {"Content-Type": XML})


# bioRxiv / medRxiv details ----------------------------------------------------------------


def biorxiv_item(
    n: int,
    *,
    day: str = "2026-11-20",
    version: int = 1,
    server: str = "biorxiv",
    category: str = "neuroscience",
    published: str = "NA",
) -> dict[str, str]:
    """One ``collection`` item as the details API sends it (every value a string)."""
    return {
        "doi": f"10.1101/2026.11.{n:06d}",
        "title": f"Preprint {n} about cells",
        "authors": "Smith, J. A.; Doe, J.",
        "author_corresponding": "Jane Smith",
        "author_corresponding_institution": "Somewhere University",
        "date": day,
        "version": str(version),
        "type": "new results",
        "license": "cc_by",
        "category": category,
        "jatsxml": "",
        "abstract": f"Abstract of preprint {n}.",
        "published": published,
        "server": server,
    }


class FakeBiorxiv(StandIn):
    """``GET /details/{server}/{from}/{to}/{cursor}/json``: items posted in the interval,
    ``page_size`` a call from ``cursor``, filtered by ``?category=``."""

    path = ""

    def __init__(self, items: list[dict[str, str]], page_size: int = 100) -> None:
        super().__init__()
        self.items = list(items)
        self.page_size = page_size

    def respond(self, path: str, params: dict[str, str]) -> Reply:
        parts = path.strip("/").split("/")
        if len(parts) != 6 or parts[0] != "details" or not parts[4].isdigit():
            return Reply(404, "not a details request", {"Content-Type": "text/plain"})
        _, server, since, until, cursor, _ = parts
        chosen = [
            i
            for i in self.items
            if i["server"] == server
            and since <= i["date"] <= until
            and params.get("category", i["category"]) == i["category"]
        ]
        start = int(cursor)
        page = chosen[start : start + self.page_size]
        body: dict[str, object]
        if not chosen:
            body = {"messages": [{"status": "no posts found"}], "collection": []}
        else:
            message: dict[str, object] = {
                "status": "ok",
                "interval": f"{since}/{until}",
                "cursor": start,
                "count": len(page),
                "total": str(len(chosen)),
            }
            body = {"messages": [message], "collection": page}
        return Reply(200, json.dumps(body), {"Content-Type": JSON})


# RSS / Atom feeds -------------------------------------------------------------------------


@dataclass
class FeedItem:
    """One item of an arXiv daily RSS feed."""

    arxiv_id: str
    title: str
    announce_type: str = "new"
    version: int = 1
    abstract: str = "An abstract."
    creators: str = "Ada Lovelace, Alan Turing"
    categories: tuple[str, ...] = ("cs.LG",)
    pub_date: str = "Fri, 20 Nov 2026 00:00:00 -0500"
    extra: list[str] = field(default_factory=list)  # raw elements, e.g. <arxiv:DOI>


def arxiv_rss(items: list[FeedItem], category: str = "cs.LG") -> str:
    """A daily feed shaped like https://rss.arxiv.org/rss/<category>."""
    rendered = "\n".join(_rss_item(item) for item in items)
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">\n<channel>\n'
        f"<title>{category} updates on arXiv.org</title>\n"
        f"<link>http://rss.arxiv.org/rss/{category}</link>\n"
        f"<description>{category} updates on the arXiv.org e-print archive.</description>\n"
        f"{rendered}\n</channel>\n</rss>\n"
    )


def _rss_item(item: FeedItem) -> str:
    categories = "".join(f"<category>{c}</category>" for c in item.categories)
    description = (
        f"arXiv:{item.arxiv_id}v{item.version} Announce Type: {item.announce_type}"
        f" \nAbstract: {item.abstract}"
    )
    return (
        f"<item><title>{escape(item.title)}</title>"
        f"<link>https://arxiv.org/abs/{item.arxiv_id}</link>"
        f"<description>{escape(description)}</description>"
        f'<guid isPermaLink="false">oai:arXiv.org:{item.arxiv_id}v{item.version}</guid>'
        f"{categories}<pubDate>{item.pub_date}</pubDate>"
        f"<arxiv:announce_type>{item.announce_type}</arxiv:announce_type>"
        f"<dc:creator>{escape(item.creators)}</dc:creator>{''.join(item.extra)}</item>"
    )


class FakeFeed(StandIn):
    """Serves ``document`` at ``/feed`` (change it between runs to publish a new day)."""

    path = "/feed"

    def __init__(self, document: str, content_type: str = RSS) -> None:
        super().__init__()
        self.document = document
        self.content_type = content_type

    def respond(self, path: str, params: dict[str, str]) -> Reply:
        return Reply(200, self.document, {"Content-Type": self.content_type})
