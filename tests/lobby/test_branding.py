"""A deployment's own name, logo and accent (issue 14 item 10): the contrast arithmetic, the
system check that refuses bad values at start-up, and the pages that show them."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from lobby import branding
from lobby.branding import (
    AA_TEXT,
    contrast_ratio,
    darken_to_contrast,
    make_brand,
    parse_color,
    readable_ink,
)
from tests.factories import make_room, make_token
from tests.support import ROOT

# Contrast ----------------------------------------------------------------------------------------


def test_contrast_ratio_matches_wcag_reference_values():
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast_ratio("#000", "#fff") == pytest.approx(21.0)  # order and short form
    assert contrast_ratio("#1f5fbf", "#1f5fbf") == pytest.approx(1.0)
    # The grey WCAG examples quote: #767676 just passes on white, #777777 just fails.
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_parse_color_accepts_hex_only():
    assert parse_color("#abc") == (0xAA, 0xBB, 0xCC)
    assert parse_color(" #1F5FBF ") == (0x1F, 0x5F, 0xBF)
    for bad in ("blue", "1f5fbf", "#12345", "#1234567", "#ggg", "rgb(1,2,3)", ""):
        with pytest.raises(ValueError):
            parse_color(bad)


def test_readable_ink_picks_white_on_dark_and_dark_on_light():
    assert readable_ink("#1f5fbf") == "#ffffff"
    assert readable_ink("#ffd700") == branding.INK  # gold: dark text
    # Mid grey: white (4.48:1) and the page ink both fall short; black reaches 4.69:1.
    assert readable_ink("#777777") == "#000000"


def test_readable_ink_reaches_aa_on_every_background():
    steps = range(0, 256, 0x11)
    for r, g, b in itertools.product(steps, steps, steps):
        bg = f"#{r:02x}{g:02x}{b:02x}"
        assert contrast_ratio(readable_ink(bg), bg) >= AA_TEXT, bg


def test_darken_to_contrast_keeps_a_dark_accent_and_darkens_a_light_one_just_enough():
    assert darken_to_contrast("#1f5fbf", "#ffffff") == "#1f5fbf"
    shade = darken_to_contrast("#ffd700", "#ffffff")
    assert contrast_ratio(shade, "#ffffff") >= AA_TEXT
    # Just enough: not much darker than the threshold (a 1% step changes it by < 0.2).
    assert contrast_ratio(shade, "#ffffff") < AA_TEXT + 0.2
    assert parse_color(shade)[0] > parse_color(shade)[2]  # still a gold, not a grey


def test_brand_colours_all_reach_aa():
    for accent in ("#1f5fbf", "#ffd700", "#ffffff", "#777777", "#00ff00", "#e11d48", "#000"):
        brand = make_brand(name="", logo="", accent=accent)
        assert contrast_ratio(brand.accent_ink, brand.accent) >= AA_TEXT, accent
        assert contrast_ratio(brand.accent_text, brand.accent_soft) >= AA_TEXT, accent
        assert contrast_ratio(brand.accent_text, "#ffffff") >= AA_TEXT, accent


def test_the_stylesheet_defaults_are_the_default_brand():
    brand = make_brand(name="", logo="", accent=branding.DEFAULT_ACCENT)
    css = (ROOT / "static/anteroom/anteroom.css").read_text()
    for prop, value in (
        ("--accent", brand.accent),
        ("--accent-ink", brand.accent_ink),
        ("--accent-text", brand.accent_text),
        ("--accent-soft", brand.accent_soft),
    ):
        assert f"  {prop}: {value};" in css, prop
    assert not brand.styled and not brand.custom and brand.name == "Anteroom"


# The system check ----------------------------------------------------------------------------


def run_check(settings, **values: str) -> list[checks.CheckMessage]:
    for key, value in values.items():
        setattr(settings, f"ANTEROOM_{key}", value)
    return checks.run_checks(tags=[branding.CHECK_TAG])


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [m.id for m in messages if m.id]


def test_check_passes_good_settings(settings):
    assert run_check(settings) == []
    assert (
        run_check(
            settings,
            PRODUCT_NAME="Riverside Clinic",
            LOGO_URL="https://cdn.example.org/riverside/logo.svg",
            ACCENT_COLOR="#0F766E",
        )
        == []
    )
    assert run_check(settings, LOGO_URL="/branding/logo.svg") == []
    assert run_check(settings, LOGO_URL="anteroom/anteroom.css") == []  # a file in static/


@pytest.mark.parametrize(
    ("accent", "shown"),
    [("blue", "'blue'"), ("#12345", "'#12345'"), ("rgb(0, 0, 255)", "'rgb(0, 0, 255)'")],
)
def test_check_refuses_a_bad_colour_naming_the_variable(settings, accent, shown):
    found = run_check(settings, ACCENT_COLOR=accent)
    assert ids(found) == ["anteroom.E103"]
    assert found[0].level == checks.ERROR
    assert found[0].msg == (
        f"ANTEROOM_ACCENT_COLOR must be a hex colour like #1f5fbf or #15a, got {shown}."
    )


@pytest.mark.parametrize(
    ("logo", "words"),
    [
        ("javascript:alert(1)", "is not an http(s) URL"),
        ("ftp://files.example.org/logo.png", "is not an http(s) URL"),
        ("data:image/png;base64,AAAA", "is not an http(s) URL"),
        ("https:///logo.png", "has no host name"),
        ("https://user:secret@cdn.example.org/logo.png", "carries a user name or password"),
        ("https://cdn.example.org:99999/logo.png", "has a bad port"),
        ("https://cdn.example.org/a logo.png", "contains spaces, quotes or angle brackets"),
        ('/logo.svg"onerror="x', "contains spaces, quotes or angle brackets"),
        ("clinic/../../etc/passwd", "is not a static file path"),
        ("clinic/no-such-logo.svg", "names no file in the static folders"),
    ],
)
def test_check_refuses_a_bad_logo(settings, logo, words):
    found = run_check(settings, LOGO_URL=logo)
    assert ids(found) == ["anteroom.E102"]
    assert found[0].msg.startswith("ANTEROOM_LOGO_URL ")
    assert words in found[0].msg


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("\u200b\u200b", "shows nothing"),
        ("x" * 61, "is 61 characters long; at most 60"),
        ("Riverside\nClinic", "contains a control character"),
    ],
)
def test_check_refuses_a_bad_product_name(settings, name, words):
    found = run_check(settings, PRODUCT_NAME=name)
    assert ids(found) == ["anteroom.E101"]
    assert words in found[0].msg


def test_check_warns_of_a_light_accent_and_names_the_shade_used(settings):
    found = run_check(settings, ACCENT_COLOR="#ffd700")
    assert ids(found) == ["anteroom.W103"]
    assert found[0].level == checks.WARNING
    shade = make_brand(name="", logo="", accent="#ffd700").accent_text
    assert f"use the darker {shade} instead" in found[0].msg


def test_raise_if_misconfigured_stops_on_errors_only(settings):
    settings.ANTEROOM_ACCENT_COLOR = "#ffd700"
    branding.raise_if_misconfigured()  # a warning starts
    settings.ANTEROOM_ACCENT_COLOR = "blue"
    with pytest.raises(ImproperlyConfigured, match=r"anteroom\.E103: ANTEROOM_ACCENT_COLOR"):
        branding.raise_if_misconfigured()


def _env(**values: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **values}


def test_manage_check_and_the_server_refuse_a_bad_colour():
    env = _env(ANTEROOM_ACCENT_COLOR="teal", ANTEROOM_LOGO_URL="javascript:alert(1)")
    check = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert check.returncode == 1
    assert "(anteroom.E103) ANTEROOM_ACCENT_COLOR must be a hex colour" in check.stderr
    assert "(anteroom.E102) ANTEROOM_LOGO_URL 'javascript:alert(1)'" in check.stderr
    # Daphne's entry point, which runs no system checks of its own, refuses too.
    asgi = subprocess.run(
        [sys.executable, "-c", "import config.asgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert asgi.returncode != 0
    assert "ImproperlyConfigured: anteroom.E102: ANTEROOM_LOGO_URL" in asgi.stderr
    assert "anteroom.E103: ANTEROOM_ACCENT_COLOR must be a hex colour like #1f5fbf" in asgi.stderr


def test_an_external_logo_s_origin_and_only_it_joins_the_csp_img_src():
    code = "from django.conf import settings; print(' '.join(settings.SECURE_CSP['img-src']))"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=_env(ANTEROOM_LOGO_URL="https://cdn.example.org:8443/brand/logo.svg?v=2"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["'self'", "data:", "https://cdn.example.org:8443"]


# Pages -------------------------------------------------------------------------------------------


@pytest.fixture
def riverside(settings):
    settings.ANTEROOM_PRODUCT_NAME = "Riverside Clinic"
    settings.ANTEROOM_LOGO_URL = "https://cdn.example.org/riverside.svg"
    settings.ANTEROOM_ACCENT_COLOR = "#0f766e"
    return make_brand(
        name="Riverside Clinic", logo="https://cdn.example.org/riverside.svg", accent="#0f766e"
    )


@pytest.mark.django_db
def test_every_page_shows_the_product_name_and_logo(client: Client, riverside):
    make_room("clinic", privacy="private", enable_knocking=True)
    owner = Client()
    owner.get(f"/r/clinic/dashboard/?t={make_token(room='clinic', sub='dr', owner=True)}")
    pages = {
        "/": "<title>Riverside Clinic — a waiting room for video calls</title>",
        "/r/clinic/": "<title>clinic · Riverside Clinic</title>",
        "/r/nowhere/": "<title>No such room · Riverside Clinic</title>",
        "/no/such/page": "<title>Page not found · Riverside Clinic</title>",
    }
    for url, title in pages.items():
        html = client.get(url).content.decode()
        assert title in html, url
        assert '<span class="brand-name">Riverside Clinic</span>' in html, url
        assert '<img class="brand-logo" src="https://cdn.example.org/riverside.svg" alt=""' in html
        assert "Riverside Clinic — a waiting room for video calls · powered by Anteroom" in html
        assert f'href="/brand.css?v={riverside.css_version}"' in html, url
    dash = owner.get("/r/clinic/dashboard/").content.decode()
    assert "<title>clinic · Riverside Clinic dashboard</title>" in dash
    assert '<span class="brand-name">Riverside Clinic</span>' in dash


@pytest.mark.django_db
def test_the_default_brand_adds_no_stylesheet_and_no_powered_by(client: Client):
    html = client.get("/").content.decode()
    assert "<title>Anteroom — a waiting room for video calls</title>" in html
    assert "brand.css" not in html and "powered by" not in html and "brand-logo" not in html


def test_server_error_page_shows_the_brand(riverside):
    from django.test import RequestFactory
    from django.urls import get_resolver

    resp = get_resolver().resolve_error_handler(500)(RequestFactory().get("/"))
    html = resp.content.decode()
    assert resp.status_code == 500
    assert "<title>Server error · Riverside Clinic</title>" in html
    assert '<span class="brand-name">Riverside Clinic</span>' in html


@pytest.mark.django_db
def test_brand_css_serves_the_accent_and_caches_only_its_own_version(client: Client, riverside):
    resp = client.get(f"/brand.css?v={riverside.css_version}")
    assert resp["Content-Type"] == "text/css; charset=utf-8"
    assert resp["Cache-Control"] == "public, max-age=31536000, immutable"
    css = resp.content.decode()
    assert "--accent:#0f766e;--accent-ink:#ffffff;" in css
    assert f"--accent-text:{riverside.accent_text};--accent-soft:{riverside.accent_soft}" in css
    assert client.get("/brand.css?v=old")["Cache-Control"] == "no-cache"


@pytest.mark.django_db
def test_a_static_logo_is_served_through_static_and_a_path_as_given(client: Client, settings):
    settings.ANTEROOM_LOGO_URL = "anteroom/anteroom.css"  # any file under static/ will do
    assert '<img class="brand-logo" src="/static/anteroom/anteroom.css" alt=""' in (
        client.get("/").content.decode()
    )
    settings.ANTEROOM_LOGO_URL = "/branding/logo.svg"
    assert '<img class="brand-logo" src="/branding/logo.svg" alt=""' in (
        client.get("/").content.decode()
    )


@pytest.mark.django_db
def test_the_admin_carries_the_product_name(client: Client, riverside):
    html = client.get("/admin/login/").content.decode()
    assert '<a href="/admin/">Riverside Clinic administration</a>' in html
    assert "| Riverside Clinic admin</title>" in html
    assert "Django administration" not in html
