"""Translations (docs/deployment.md "Languages"): every page string goes through Django's i18n,
the second language is complete, the committed .mo files match their .po files, the language
comes from Accept-Language or the switcher (a CSRF-protected POST), and the protocol's codes
are never translated."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.template.base import Lexer, TokenType
from django.test import Client as HttpClient

from lobby.models import Room
from tests.factories import make_room, make_token
from tests.support.ws import Client

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale"
TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
SECOND = [code for code, _ in settings.LANGUAGES if code != "en"]
DOMAINS = ("django", "djangojs")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]")

# Words a template may show as they are (the product's name).
UNTRANSLATED_WORDS = {"Anteroom"}


# The .po files -----------------------------------------------------------------------------


def _unquote(line: str) -> str:
    return ast.literal_eval(line)  # a .po string is a C string literal, as Python reads it


def parse_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (a list), flags."""
    entries: list[dict] = []
    entry: dict = {}
    field = None

    def flush() -> None:
        nonlocal entry
        if "msgid" in entry:
            entries.append(entry)
        entry = {}

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
            field = None
        elif line.startswith("#~"):
            raise AssertionError(f"{path}: obsolete entry left in (scripts/messages drops them)")
        elif line.startswith("#,"):
            entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            assert field is not None, f"{path}: continuation without a field: {raw!r}"
            if isinstance(entry[field], list):
                entry[field][-1] += _unquote(line)
            else:
                entry[field] += _unquote(line)
        else:
            key, _, value = line.partition(" ")
            if key.startswith("msgstr["):
                entry.setdefault("msgstr", []).append(_unquote(value))
                field = "msgstr"
            elif key == "msgstr":
                entry["msgstr"] = [_unquote(value)]
                field = "msgstr"
            else:
                if key == "msgctxt" and "msgid" in entry:
                    flush()
                entry[key] = _unquote(value)
                field = key
    flush()
    return entries


@pytest.mark.parametrize("lang", SECOND)
@pytest.mark.parametrize("domain", DOMAINS)
def test_every_string_is_translated_and_none_fuzzy(lang, domain):
    entries = parse_po(LOCALE / lang / "LC_MESSAGES" / f"{domain}.po")
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == "" and "fuzzy" not in header.get("flags", set())
    assert f"Language: {lang}\n" in header["msgstr"][0]
    assert len(messages) > 50, "the catalogue is nearly empty: was makemessages run?"
    problems: list[tuple[str, ...]] = []
    for e in messages:
        if "fuzzy" in e.get("flags", set()):
            problems.append(("fuzzy", e["msgid"]))
        if not all(e["msgstr"]) or len(e["msgstr"]) != (2 if "msgid_plural" in e else 1):
            problems.append(("untranslated", e["msgid"]))
        # Same placeholders, or interpolation breaks (or leaks a raw %(name)s) at run time.
        wanted = set(PLACEHOLDER.findall(e["msgid"] + e.get("msgid_plural", "")))
        for text in e["msgstr"]:
            if set(PLACEHOLDER.findall(text)) - wanted or (
                "msgid_plural" not in e and set(PLACEHOLDER.findall(text)) != wanted
            ):
                problems.append(("placeholders", e["msgid"], text))
    assert problems == []


@pytest.mark.parametrize("lang", SECOND)
@pytest.mark.parametrize("domain", DOMAINS)
def test_committed_mo_matches_its_po(lang, domain):
    """The .mo is committed (a fresh clone has no msgfmt); it must say what the .po says."""
    folder = LOCALE / lang / "LC_MESSAGES"
    with (folder / f"{domain}.mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    expected: dict = {}
    for e in parse_po(folder / f"{domain}.po")[1:]:
        key = f"{e['msgctxt']}\x04{e['msgid']}" if "msgctxt" in e else e["msgid"]
        if "msgid_plural" in e:
            for i, text in enumerate(e["msgstr"]):
                expected[(key, i)] = text
        else:
            expected[key] = e["msgstr"][0]
    compiled = {k: v for k, v in compiled.items() if k != ""}
    assert compiled == expected, "run scripts/messages (it compiles the .mo files)"


# Templates ---------------------------------------------------------------------------------

MARK = "\x00"  # stands for a {{ variable }}, a {% tag %} or a translated block
TAG = re.compile(r"<(?:[^<>]|" + MARK + r")*>", re.S)
ATTR = re.compile(r'\b(aria-label|placeholder|title|alt)="([^"]*)"')
WORD = re.compile(r"[^\W\d_]{2,}")


def untranslated_text(source: str) -> list[str]:
    """Human-visible words a template shows without {% translate %} / {% blocktranslate %}:
    text between tags, and the aria-label / placeholder / title / alt attributes."""
    parts: list[str] = []
    skip = None  # inside {% blocktranslate %} or {% comment %}
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0]
            if skip:
                if name == f"end{skip}":
                    skip = None
                continue
            if name in ("blocktranslate", "blocktrans", "comment"):
                skip = "blocktranslate" if name.startswith("blocktrans") else "comment"
                parts.append(MARK)
                continue
            if token.contents.split()[1:2] == ["body_class"]:  # a CSS class, not text
                skip = "block"
                continue
            parts.append(MARK)
        elif skip:
            continue
        elif token.token_type == TokenType.TEXT:
            parts.append(token.contents)
        elif token.token_type == TokenType.VAR:
            parts.append(MARK)
    page = re.sub(r"<!--.*?-->", "", "".join(parts), flags=re.S)
    page = re.sub(r"<(script|style)\b.*?</\1>", MARK, page, flags=re.S)
    found = []
    for tag in TAG.findall(page):
        for attr, value in ATTR.findall(tag):
            found += [f"{attr}: {w}" for w in WORD.findall(value.replace(MARK, " "))]
    text = TAG.sub(MARK, page).replace("&nbsp;", " ")
    found += [w for w in WORD.findall(text) if w not in UNTRANSLATED_WORDS]
    return found


def test_the_template_checker_finds_english():
    """The checker itself: it sees text, attributes and text around variables, and accepts
    translated text (including blocktranslate's own text and markup)."""
    found = untranslated_text
    assert found("<p>Hello {{ name }}</p>") == ["Hello"]
    assert found('<input placeholder="Your name">') == ["placeholder: Your", "placeholder: name"]
    assert found('<a title="{% translate "Back" %}">{{ x }} min</a>') == ["min"]
    assert found("{% load i18n %}<p>{% translate 'Hello' %} · {{ n }}/{{ m }}</p>") == []
    assert found("<p>{% blocktranslate %}Room <b>{{ n }}</b>{% endblocktranslate %}</p>") == []
    assert found("{# a comment #}<!-- note --><p>{% comment %}x y{% endcomment %}</p>") == []
    assert found("{% block body_class %}guest-page{% endblock %}") == []
    assert found("{% block title %}Room{% endblock %}") == ["Room"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_templates_show_no_untranslated_text(path):
    assert untranslated_text(path.read_text(encoding="utf-8")) == []


# Pages in the second language ----------------------------------------------------------------


# English a page must not show in German (each is on the English page: checked below).
ENGLISH = {
    "home": ["A waiting room for video calls", "Guests and hosts", "Sign in to the admin"],
    "guest": ["Knock to enter", "Your name", "Note for the host", "Camera and microphone"],
    "missing": ["There is no room called", "Check the link you were given"],
    "login": ["This dashboard is for the room's moderators", "Sign in as staff"],
}


def _pages(client: HttpClient) -> dict[str, str]:
    if not Room.objects.filter(name="clinic").exists():
        make_room("clinic", privacy="private", enable_knocking=True)
    return {
        "home": client.get("/").content.decode(),
        "guest": client.get("/r/clinic/").content.decode(),
        "missing": client.get("/r/nowhere/").content.decode(),
        "login": client.get("/r/clinic/dashboard/").content.decode(),
    }


@pytest.mark.django_db
def test_pages_follow_accept_language():
    english = _pages(HttpClient())
    for page, words in ENGLISH.items():
        assert '<html lang="en">' in english[page]
        for w in words:
            assert w in english[page].replace("&#x27;", "'"), (page, w)
    german = _pages(HttpClient(HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5"))
    for page, words in ENGLISH.items():
        assert '<html lang="de">' in german[page]
        for w in words:
            assert w not in german[page].replace("&#x27;", "'"), (page, w)
    assert "Anklopfen" in german["guest"] and "Ihr Name" in german["guest"]
    assert "Es gibt keinen Raum namens „nowhere“" in german["missing"]
    # The switcher names each language in itself, the current one selected.
    assert '<option value="de" lang="de" selected>Deutsch</option>' in german["guest"]
    assert '<option value="en" lang="en">English</option>' in german["guest"]


@pytest.mark.django_db
def test_an_unknown_language_falls_back_to_english():
    page = _pages(HttpClient(HTTP_ACCEPT_LANGUAGE="tlh,xx;q=0.5"))["guest"]
    assert '<html lang="en">' in page and "Knock to enter" in page


@pytest.mark.django_db
def test_the_switcher_is_a_csrf_protected_post_that_sets_the_language():
    make_room("clinic", privacy="private", enable_knocking=True)
    client = HttpClient(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    page = client.get("/r/clinic/").content.decode()
    form = re.search(
        r'class="lang-switch".*?name="csrfmiddlewaretoken" value="([^"]+)"', page, re.S
    )
    assert form, "the switcher's form carries a CSRF token"
    token = form.group(1)
    assert 'name="next" value="/r/clinic/"' in page
    assert client.get("/i18n/setlang/?language=de").status_code == 405  # only the form's POST
    # Without the form's token: refused, nothing set.
    refused = client.post("/i18n/setlang/", {"language": "de", "next": "/r/clinic/"})
    assert refused.status_code == 403
    assert settings.LANGUAGE_COOKIE_NAME not in refused.cookies
    assert '<html lang="en">' in client.get("/r/clinic/").content.decode()
    # With it: a redirect back to the page (works without JavaScript), now in German.
    done = client.post(
        "/i18n/setlang/",
        {"language": "de", "next": "/r/clinic/", "csrfmiddlewaretoken": token},
    )
    assert done.status_code == 302 and done["Location"] == "/r/clinic/"
    cookie = done.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "de" and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert '<html lang="de">' in client.get("/r/clinic/").content.decode()
    # The cookie wins over Accept-Language; another site's address is not followed.
    away = client.post(
        "/i18n/setlang/",
        {"language": "en", "next": "https://evil.example/", "csrfmiddlewaretoken": token},
    )
    assert away.status_code == 302 and away["Location"] == "/"


@pytest.mark.django_db
def test_the_switcher_never_carries_the_page_s_query_string():
    """A guest link's token (?t=) stays out of the switcher's ``next`` (the script removes it
    from the address bar; the form must not put it back)."""
    make_room("clinic", privacy="private", enable_knocking=True)
    token = make_token(room="clinic")
    page = HttpClient().get(f"/r/clinic/?t={token}").content.decode()
    assert token not in page.split('class="lang-switch"')[1]


@pytest.mark.django_db
def test_the_javascript_catalogue_follows_the_language():
    german = HttpClient(HTTP_ACCEPT_LANGUAGE="de").get("/jsi18n/")
    assert german.status_code == 200 and "javascript" in german["Content-Type"]
    body = german.content.decode()
    assert "Zu oft angeklopft" in body and '"Too many knocks"' in body
    assert "Accept-Language" in german.get("Vary", "")
    english = HttpClient(HTTP_ACCEPT_LANGUAGE="en").get("/jsi18n/").content.decode()
    assert "Zu oft angeklopft" not in english


def test_codes_are_never_msgids():
    """The protocol stays untranslated: no error code is a translatable string."""
    from lobby import errors

    codes = {
        c.code
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.AnteroomError) and c.code
    }
    assert "ENTRY_RATE_LIMITED" in codes
    msgids = {
        e["msgid"]
        for lang in SECOND
        for domain in DOMAINS
        for e in parse_po(LOCALE / lang / "LC_MESSAGES" / f"{domain}.po")
    }
    assert not codes & msgids


# The socket's error frames -------------------------------------------------------------------


async def _unknown_room_error(headers: list[tuple[bytes, bytes]]) -> tuple[dict, int | None]:
    c = Client("nowhere", headers=headers)
    await c.connect()
    try:
        await c.send(type="join", name="Pat")
        frame = await c.expect("error")
        await c.recv()  # the close that follows
        return frame, c.closed
    finally:
        await c.close()


@pytest.mark.django_db(transaction=True)
async def test_error_frames_keep_their_code_and_speak_the_page_s_language():
    """Only ``message`` follows the handshake's language (the switcher's cookie, else
    Accept-Language); the frame type, the code and the close code are the same."""
    english, en_close = await _unknown_room_error([(b"accept-language", b"en-GB,en")])
    german, de_close = await _unknown_room_error([(b"accept-language", b"de-DE,de;q=0.9")])
    assert english == {
        "type": "error",
        "error": {"code": "ROOM_NOT_FOUND", "message": "No such room."},
    }
    assert german == {
        "type": "error",
        "error": {"code": "ROOM_NOT_FOUND", "message": "Diesen Raum gibt es nicht."},
    }
    assert en_close == de_close == 4404
    cookie = f"{settings.LANGUAGE_COOKIE_NAME}=de".encode()
    chosen, _ = await _unknown_room_error([(b"accept-language", b"en"), (b"cookie", cookie)])
    assert chosen["error"]["message"] == "Diesen Raum gibt es nicht."


@pytest.mark.django_db(transaction=True)
async def test_a_message_written_for_one_case_stays_as_written():
    """Developer messages with details in them (``Unknown message type.`` and the like) are not
    translatable strings: a German socket gets them as the server wrote them."""
    make_room_async = database_sync_to_async(make_room)
    await make_room_async("clinic", privacy="public")
    c = Client("clinic", headers=[(b"accept-language", b"de")])
    await c.connect()
    try:
        ack = await c.request("no-such-type")
        assert ack["error"] == {"code": "BAD_REQUEST", "message": "Unknown message type."}
    finally:
        await c.close()


# Every string the sources mark is in the catalogue (with its German) -----------------------

PY_FUNCS = {"_", "gettext", "gettext_lazy", "gettext_noop", "ngettext", "pgettext"}
CALL = re.compile(
    r"\b(gettext|ngettext|pgettext|npgettext)\(\s*((?:u?(?:'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")\s*,?\s*)+)"
)
STRING = re.compile(r"u?('(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")")


def _calls(code: str) -> set[str]:
    """msgids (``ctx\\x04msgid`` with a context) of gettext-style calls with literal strings."""
    found = set()
    for name, args in CALL.findall(code):
        strings = [ast.literal_eval(s) for s in STRING.findall(args)]
        if name.startswith(("pgettext", "npgettext")) and len(strings) >= 2:
            found.add(f"{strings[0]}\x04{strings[1]}")
        elif strings:
            found.add(strings[0])
    return found


def source_msgids() -> dict[str, set[str]]:
    from django.utils.translation.template import templatize

    django_ids: set[str] = set()
    for path in TEMPLATES:
        django_ids |= _calls(templatize(path.read_text(encoding="utf-8")))
    for folder in ("lobby", "breakouts", "config"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                args = [
                    a.value
                    for a in node.args
                    if isinstance(a, ast.Constant) and isinstance(a.value, str)
                ]
                if name not in PY_FUNCS or not args:
                    continue
                django_ids.add(f"{args[0]}\x04{args[1]}" if name == "pgettext" else args[0])
    js_ids: set[str] = set()
    for path in (ROOT / "static" / "anteroom").glob("*.js"):
        js_ids |= _calls(path.read_text(encoding="utf-8"))
    return {"django": django_ids, "djangojs": js_ids}


@pytest.mark.parametrize("lang", SECOND)
def test_every_marked_string_is_in_the_catalogue(lang):
    """A string marked for translation but missing from the .po would show in English on a
    German page: run scripts/messages and translate it."""
    for domain, wanted in source_msgids().items():
        entries = parse_po(LOCALE / lang / "LC_MESSAGES" / f"{domain}.po")[1:]
        have = {
            f"{e['msgctxt']}\x04{e['msgid']}" if "msgctxt" in e else e["msgid"] for e in entries
        }
        assert len(wanted) > 50, domain
        assert sorted(wanted - have) == [], f"{domain}: not in locale/{lang} (scripts/messages)"
