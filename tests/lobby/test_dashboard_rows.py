"""The dashboard's rows are written once (issue 9 item 7): the server renders each waiting knock
and each person in the room from a partial, and the same partial fills the <template> that
dashboard.js clones for what arrives live. So both copies have the same elements, classes,
form fields and buttons; only the data differs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from lobby.models import Room
from tests.factories import conn, knock, make_room, make_token, present

pytestmark = pytest.mark.django_db(transaction=True)

# Attributes that carry a row's data (filled by the server, or by the script in the clone).
DATA = {"data-request-id", "data-requested-at", "data-expires-at", "data-participant-id"}
DATA_VALUES = {"value", "id", "for"}  # present in both, with the row's own values


# The tags a row shows only when they apply: the template copy has each (hidden), a served row
# only those that apply to it.
OPTIONAL = {"early", "reconnecting", "you", "moderator", "paused"}


class Skeleton(HTMLParser):
    """The elements of a fragment: tag, class and the names of its attributes (no values, no
    text), so two renderings of one row compare equal whatever their data. Optional tags are
    left out, and ``data-slot`` (the script's handle) is not counted as a difference."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str, tuple[str, ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-slot") in OPTIONAL or a.get("data-slot") == "name":
            return  # optional tags, and the empty spans where the script writes the name
        if tag in ("dt", "dd") or (tag == "div" and not a.get("class")):
            return  # the metadata entries inside dl.meta: one per item of the guest's metadata
        cls = " ".join(c for c in (a.get("class") or "").split() if not c.startswith("avatar-"))
        names = tuple(sorted(k for k in a if k not in DATA | {"class", "hidden", "data-slot"}))
        kept = tuple(f"{k}={a[k]}" for k in ("name", "type") if k in a)
        self.items.append((tag, cls, names + kept))


def skeleton(fragment: str) -> list[tuple[str, str, tuple[str, ...]]]:
    parser = Skeleton()
    parser.feed(fragment)
    return parser.items


def between(html: str, start: str, end: str) -> str:
    i = html.index(start)
    return html[i + len(start) : html.index(end, i)]


@pytest.fixture
def owner() -> Client:
    make_room("clinic", privacy="private", enable_knocking=True)
    client = Client()
    client.get(f"/r/clinic/dashboard/?t={make_token(room='clinic', sub='dr', owner=True)}")
    return client


def test_the_live_waiting_row_is_the_server_row(owner):
    room = Room.objects.get(name="clinic")
    # Disconnected, so the server row shows the "reconnecting" tag the clone carries hidden.
    w = knock(room, name="Pat Doe", c=conn(browser="pat"), metadata={"note": "back pain"})
    from lobby import services

    services.entry_request_disconnected(request_id=w.request.id, connection_id="gone")
    html = owner.get("/r/clinic/dashboard/").content.decode()
    served = between(html, '<ul id="waiting-list" class="rows">', "</ul>")
    template = between(html, '<template id="waiting-row-template">', "</template>")
    assert f'data-request-id="{w.request.id}"' in served and "data-request-id" not in template
    assert skeleton(served.strip()) != []
    # The same elements; the template copy also has every optional tag (hidden until used).
    assert skeleton(template) == skeleton(served)
    assert 'data-slot="early" hidden' in template and 'data-slot="early"' not in served
    assert 'data-slot="reconnecting" hidden' in template
    assert "<dt>note</dt><dd>back pain</dd>" in served and '<dl class="meta" hidden>' in template
    # Every name in the template is a slot the script fills; the server wrote the guest's.
    assert served.count("Pat Doe") == template.count('data-slot="name"')
    assert re.search(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">', template)


def test_the_live_person_row_is_the_server_row(owner):
    room = Room.objects.get(name="clinic")
    present(room, "pat", name="Pat Doe")
    html = owner.get("/r/clinic/dashboard/").content.decode()
    served = between(html, '<ul id="participant-list" class="people"', "</ul>")
    served = served.split(">", 1)[1]
    template = between(html, '<template id="person-row-template">', "</template>")
    rows = served.split('<li data-participant-id="')
    pat = next('<li data-participant-id="' + r for r in rows if r.startswith("pat"))
    # The template copy carries the moderator / in-a-breakout / (you) tags hidden, and the
    # actions form the script removes for a moderator.
    assert skeleton(template) == skeleton(pat)
    for slot in ("you", "moderator", "paused"):
        assert f'data-slot="{slot}" hidden' in template
