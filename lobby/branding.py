"""A deployment's own look: product name, logo and accent colour (docs/deployment.md "Make it
yours").

Three settings, read from the environment by config/settings.py:

* ``ANTEROOM_PRODUCT_NAME`` — shown in every page's ``<title>``, header and footer;
* ``ANTEROOM_LOGO_URL`` — an ``https://`` (or ``http://``) image URL, a path on this server
  (``/media/logo.svg``) or a static file (``clinic/logo.svg``, found by ``collectstatic``);
* ``ANTEROOM_ACCENT_COLOR`` — ``#rrggbb`` or ``#rgb``: buttons, focus rings, counts.

:func:`check_branding` is a Django system check (``manage.py check``, ``migrate``), and
config/asgi.py runs it before the server starts, so a bad value stops Daphne with the same
message. :func:`context` is the context processor that puts :class:`Brand` in every page;
``lobby.views.brand_css`` serves the accent as CSS custom properties (a stylesheet of this
origin: the Content-Security-Policy allows no inline style).

Colours follow WCAG 2.2: text on the accent (buttons) gets whichever of white or near-black
reads better (at least 4.5:1 — one of them always does), and text *in* the accent colour on
white (secondary buttons, counts, focus rings) uses the accent darkened just enough to reach
4.5:1 when the accent itself is too light.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.templatetags.static import static

from .text import is_blank

DEFAULT_NAME = "Anteroom"
DEFAULT_ACCENT = "#1f5fbf"
MAX_NAME_LENGTH = 60
MAX_URL_LENGTH = 2000
WHITE = "#ffffff"
INK = "#1b1f24"  # the pages' body text (anteroom.css --ink)
BLACK = "#000000"
AA_TEXT = 4.5  # WCAG 2.2 SC 1.4.3: normal-size text
SOFT_MIX = 0.12  # the accent's share of the light tint behind counts and info notices

CHECK_TAG = "anteroom_branding"
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_STATIC_PATH = re.compile(r"[A-Za-z0-9_.\-/]+")

RGB = tuple[int, int, int]


# Colour arithmetic (WCAG 2.2 relative luminance and contrast ratio) ----------------------------


def parse_color(value: str) -> RGB:
    """``#rgb`` or ``#rrggbb`` (any case) → ``(r, g, b)``; anything else raises ``ValueError``."""
    text = value.strip()
    if not _HEX.fullmatch(text):
        raise ValueError(f"not a hex colour: {value!r}")
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def to_hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2.2 relative luminance, 0 (black) to 1 (white)."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two hex colours, 1 to 21 (order does not matter)."""
    la, lb = relative_luminance(parse_color(a)), relative_luminance(parse_color(b))
    light, dark = max(la, lb), min(la, lb)
    return (light + 0.05) / (dark + 0.05)


def readable_ink(background: str) -> str:
    """The text colour for ``background``: white if it reaches 4.5:1, else the page ink if that
    does, else whichever of white and black contrasts more (black always reaches 4.58:1 where
    white does not)."""
    for candidate in (WHITE, INK):
        if contrast_ratio(candidate, background) >= AA_TEXT:
            return candidate
    return max((WHITE, BLACK), key=lambda c: contrast_ratio(c, background))


def mix(a: str, b: str, share_of_a: float) -> str:
    """``share_of_a`` of colour ``a`` mixed into ``b`` (sRGB, rounded)."""
    ra, rb = parse_color(a), parse_color(b)
    mixed = tuple(round(x * share_of_a + y * (1 - share_of_a)) for x, y in zip(ra, rb, strict=True))
    return to_hex((mixed[0], mixed[1], mixed[2]))


def darken_to_contrast(color: str, against: str, ratio: float = AA_TEXT) -> str:
    """``color`` itself if it reaches ``ratio`` on ``against``, else the lightest shade of it
    (mixed toward black in 1% steps) that does. Black reaches 4.5:1 on any light background."""
    if contrast_ratio(color, against) >= ratio:
        return to_hex(parse_color(color))
    for step in range(1, 101):
        shade = mix(color, BLACK, 1 - step / 100)
        if contrast_ratio(shade, against) >= ratio:
            return shade
    return BLACK


# The brand -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Brand:
    """What the templates show. ``custom`` is true when the name differs from Anteroom's (the
    footer then adds "powered by Anteroom")."""

    name: str
    logo_url: str
    accent: str
    accent_ink: str  # text on an accent background
    accent_text: str  # the accent as text (or a focus ring) on white and on accent_soft
    accent_soft: str  # a light tint of the accent (counts, info notices)
    custom: bool
    css_version: str  # changes with the colours: the stylesheet URL's cache key

    @property
    def styled(self) -> bool:
        """Whether the accent differs from the stylesheet's own (so pages link brand.css)."""
        return self.accent != DEFAULT_ACCENT

    def css(self) -> str:
        return (
            ":root{"
            f"--accent:{self.accent};--accent-ink:{self.accent_ink};"
            f"--accent-text:{self.accent_text};--accent-soft:{self.accent_soft}"
            "}\n"
        )


def make_brand(*, name: str, logo: str, accent: str) -> Brand:
    """Build a :class:`Brand` from already-valid settings (:func:`problems` is empty)."""
    accent_hex = to_hex(parse_color(accent or DEFAULT_ACCENT))
    soft = mix(accent_hex, WHITE, SOFT_MIX)
    text = darken_to_contrast(accent_hex, soft)
    shown = name.strip() or DEFAULT_NAME
    colours = f"{accent_hex}{readable_ink(accent_hex)}{text}{soft}"
    return Brand(
        name=shown,
        logo_url=logo_src(logo.strip()),
        accent=accent_hex,
        accent_ink=readable_ink(accent_hex),
        accent_text=text,
        accent_soft=soft,
        custom=shown != DEFAULT_NAME,
        css_version=hashlib.sha256(colours.encode()).hexdigest()[:10],
    )


def logo_src(logo: str) -> str:
    """The ``src`` of the logo: a URL or an absolute path as given, a static file through
    ``static()`` (so it gets collectstatic's URL)."""
    if not logo or logo.startswith(("https://", "http://", "/")):
        return logo
    return static(logo)


def _settings() -> tuple[str, str, str]:
    return (
        str(getattr(settings, "ANTEROOM_PRODUCT_NAME", DEFAULT_NAME)),
        str(getattr(settings, "ANTEROOM_LOGO_URL", "")),
        str(getattr(settings, "ANTEROOM_ACCENT_COLOR", DEFAULT_ACCENT)),
    )


@cache
def _brand_for(name: str, logo: str, accent: str) -> Brand:
    return make_brand(name=name, logo=logo, accent=accent)


def get_brand() -> Brand:
    """This deployment's brand (cached per settings, so ``override_settings`` works in tests)."""
    return _brand_for(*_settings())


# Validation ------------------------------------------------------------------------------------


def problems(*, name: str, logo: str, accent: str) -> list[checks.CheckMessage]:
    """Every problem with the three settings, as system-check messages naming the variable."""
    found: list[checks.CheckMessage] = []
    if name.strip() and is_blank(name):
        found.append(
            checks.Error(
                "ANTEROOM_PRODUCT_NAME shows nothing (only spaces or invisible characters).",
                hint="Set a name people can read, e.g. ANTEROOM_PRODUCT_NAME='Riverside Clinic', "
                "or unset it for 'Anteroom'.",
                id="anteroom.E101",
            )
        )
    elif len(name.strip()) > MAX_NAME_LENGTH:
        found.append(
            checks.Error(
                f"ANTEROOM_PRODUCT_NAME is {len(name.strip())} characters long; at most "
                f"{MAX_NAME_LENGTH} fit in a page title and header.",
                hint="Use the short name people know you by.",
                id="anteroom.E101",
            )
        )
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        found.append(
            checks.Error(
                "ANTEROOM_PRODUCT_NAME contains a control character (a newline or tab?).",
                hint="Put the name on one line.",
                id="anteroom.E101",
            )
        )
    found.extend(_logo_problems(logo.strip()))
    try:
        accent_hex = to_hex(parse_color(accent or DEFAULT_ACCENT))
    except ValueError:
        found.append(
            checks.Error(
                f"ANTEROOM_ACCENT_COLOR must be a hex colour like #1f5fbf or #15a, got {accent!r}.",
                hint="Colour names and rgb() are not accepted: write the colour as # and 3 or 6 "
                "hex digits (quote it in a shell: '#1f5fbf').",
                id="anteroom.E103",
            )
        )
    else:
        soft = mix(accent_hex, WHITE, SOFT_MIX)
        on_white = contrast_ratio(accent_hex, soft)
        if on_white < AA_TEXT:
            found.append(
                checks.Warning(
                    f"ANTEROOM_ACCENT_COLOR {accent_hex} is too light for text on white and on "
                    f"its light tint ({on_white:.1f}:1, WCAG asks for {AA_TEXT}:1): text and "
                    "outlines in the "
                    f"accent use the darker {darken_to_contrast(accent_hex, soft)} instead.",
                    hint="Buttons keep the colour you chose (with "
                    f"{readable_ink(accent_hex)} text). Pick a darker accent to avoid the "
                    "substitute.",
                    id="anteroom.W103",
                )
            )
    return found


def _logo_problems(logo: str) -> list[checks.CheckMessage]:
    if not logo:
        return []

    def error(msg: str, hint: str) -> list[checks.CheckMessage]:
        return [checks.Error(f"ANTEROOM_LOGO_URL {msg}", hint=hint, id="anteroom.E102")]

    usage = (
        "Use an https:// image URL, a path on this server (/branding/logo.svg) or a file under "
        "static/ (clinic/logo.svg)."
    )
    if len(logo) > MAX_URL_LENGTH:
        return error(f"is {len(logo)} characters long (at most {MAX_URL_LENGTH}).", usage)
    if any(c.isspace() or ord(c) < 32 or c in "\"'<>\\" for c in logo):
        return error(f"{logo!r} contains spaces, quotes or angle brackets.", usage)
    if "://" in logo or logo.startswith("//") or ":" in logo.split("/", 1)[0]:
        parts = urlsplit(logo)
        if parts.scheme not in ("https", "http"):
            return error(f"{logo!r} is not an http(s) URL.", usage)
        if not parts.hostname:
            return error(f"{logo!r} has no host name.", usage)
        if parts.username is not None or parts.password is not None:
            return error(
                f"{logo!r} carries a user name or password.",
                "Every visitor's browser would see it; serve the logo from a public URL.",
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            return error(f"{logo!r} has a bad port.", usage)
        return []
    if logo.startswith("/"):
        return []
    if not _STATIC_PATH.fullmatch(logo) or ".." in logo.split("/"):
        return error(f"{logo!r} is not a static file path.", usage)
    from django.contrib.staticfiles import finders

    if not finders.find(logo):
        folders = ", ".join(map(str, settings.STATICFILES_DIRS))
        return error(
            f"{logo!r} names no file in the static folders ({folders}).",
            "Put the image there (collectstatic copies it), or give an https:// URL.",
        )
    return []


@checks.register(CHECK_TAG)
def check_branding(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The system check: ``manage.py check`` lists anteroom.E101 (name), E102 (logo), E103
    (accent) and W103 (an accent too light for text, with the shade used instead)."""
    name, logo, accent = _settings()
    return problems(name=name, logo=logo, accent=accent)


def raise_if_misconfigured() -> None:
    """Start-up (config/asgi.py): a branding error stops the server, naming the variable."""
    errors = [m for m in check_branding() if m.is_serious()]
    if errors:
        raise ImproperlyConfigured(
            "; ".join(f"{m.id}: {m.msg} {m.hint or ''}".strip() for m in errors)
        )


# The context processor (the stylesheet is lobby.views.brand_css) ----------------------------


def context(request: HttpRequest | None = None) -> dict[str, Brand]:
    """Context processor (settings.TEMPLATES): ``brand`` in every template."""
    return {"brand": get_brand()}
