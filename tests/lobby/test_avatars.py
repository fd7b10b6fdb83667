"""Initials avatars and the dashboard's empty states (issue 14 item 10), server side. The
browser side (the live rows, the same answers from avatar.js): tests/browser/test_branding_ui.py."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template
from django.test import Client

from lobby import avatars
from lobby.branding import contrast_ratio
from tests.factories import conn, knock, make_room, make_token
from tests.support import ROOT

# Shared with the browser test, which checks that avatar.js gives the same answers.
NAMES = {
    "Pat Doe": "PD",
    "Dr. Ann-Marie Lee": "DL",
    "ada": "A",
    "  Nora   van der Berg ": "NB",
    "Ölaf Ünal": "ÖÜ",
    "山田 太郎": "山太",
    "ßtrasse x": "SX",
    "(Pat) 'O'Brien'": "PO",
    "🦄 Unicorn": "U",
    "🦄": "?",
    "": "?",
    "Zoë\u3000Okafor": "ZO",  # an ideographic space separates words too
    "Ze\u0301lia Brown": "ZB",  # a combining accent: NFC first
    "Jo\u200bAnn": "J",  # a zero-width space is not a separator
}


@pytest.mark.parametrize(("name", "expected"), NAMES.items())
def test_initials(name, expected):
    assert avatars.initials(name) == expected


def test_colour_is_deterministic_spacing_blind_and_spread():
    assert avatars.colour_index("Pat Doe") == avatars.colour_index("Pat Doe")
    assert avatars.colour_index("  Pat \t Doe ") == avatars.colour_index("Pat Doe")
    assert avatars.colour_index("Ze\u0301lia") == avatars.colour_index("Zélia")
    slots = {avatars.colour_index(f"Guest {i}") for i in range(64)}
    assert slots == set(range(len(avatars.PALETTE)))  # every colour gets used


def test_white_initials_reach_aa_on_every_palette_colour_and_the_css_agrees():
    css = (ROOT / "static/anteroom/anteroom.css").read_text()
    for i, colour in enumerate(avatars.PALETTE):
        assert contrast_ratio(avatars.AVATAR_INK, colour) >= 4.5, colour
        assert f".avatar-{i} {{ background: {colour}; }}" in css
    assert len(re.findall(r"\.avatar-\d \{", css)) == len(avatars.PALETTE)


def test_avatar_tag_is_decorative_and_escapes():
    out = Template("{% load avatars %}{% avatar name %}").render(Context({"name": "<b>Eve</b> X"}))
    slot = avatars.colour_index("<b>Eve</b> X")
    assert out == f'<span class="avatar avatar-{slot}" aria-hidden="true">BX</span>'
    evil = Template("{% load avatars %}{% avatar name %}").render(Context({"name": "<script>"}))
    assert "<script>" not in evil and ">S</span>" in evil


# The dashboard without JavaScript -------------------------------------------------------------


@pytest.fixture
def owner(db) -> Client:
    make_room("clinic", privacy="private", enable_knocking=True)
    client = Client()
    client.get(f"/r/clinic/dashboard/?t={make_token(room='clinic', sub='dr', owner=True)}")
    return client


def test_empty_dashboard_says_what_happens_and_offers_the_guest_link(owner):
    html = owner.get("/r/clinic/dashboard/").content.decode()
    empty = html[html.index('<div id="waiting-empty"') : html.index('<ul id="waiting-list"')]
    assert "hidden" not in empty.split(">", 1)[0]
    assert "Nobody is waiting." in empty
    assert "When a guest knocks, they appear here with buttons to admit or deny them" in empty
    assert '<input id="invite-link" value="http://testserver/r/clinic/" readonly' in empty
    # The Copy button needs the script: hidden until it runs. The field works without it.
    assert '<button type="button" id="copy-invite-link" class="secondary" hidden>' in empty
    assert 'id="participants-empty" class="empty muted" >' in html
    assert "Nobody is in the room yet. Guests you admit appear here" in html
    assert "Nothing yet. What became of each knock" in html
    assert (
        "No breakout rooms yet. To split the people here into groups, choose how many rooms and "
        "people per room and press Create and assign everyone"
    ) in html


@pytest.mark.django_db(transaction=True)
def test_waiting_guests_and_participants_get_avatars_beside_their_names(owner):
    knock("clinic", name="Pat Doe", c=conn(browser="pat"))
    html = owner.get("/r/clinic/dashboard/").content.decode()
    slot = avatars.colour_index("Pat Doe")
    assert (
        f'<span class="avatar avatar-{slot}" aria-hidden="true">PD</span>'
        '<span class="name">Pat Doe</span>'
    ) in html
    assert re.search(r'<div id="waiting-empty" class="empty" hidden>', html)
