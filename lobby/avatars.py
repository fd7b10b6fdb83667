"""Initials avatars: a coloured circle with a person's initials beside their name.

Deterministic — the same name always gets the same initials and colour, on the server
(templates, through ``{% avatar name %}``) and in the live rows (static/anteroom/avatar.js runs
the same steps; tests/browser/test_branding_ui.py compares the two). Decorative: the avatar is
``aria-hidden`` and the name next to it stays the text people and screen readers read.

The steps, on the NFC-normalised name:

* words: split at space separators (Unicode Zs) and tab / line-break characters;
* initials: the first letter or digit (Unicode L* / N*) of the first word and, if there are
  several words, of the last; each upper-cased (its first character, if upper-casing makes
  more); ``?`` when the name has no letter or digit at all;
* colour: 32-bit FNV-1a over the code points of the words joined by one space, modulo the
  palette's size.
"""

from __future__ import annotations

import unicodedata

# Background colours; white text on each reaches WCAG 4.5:1 (tests/lobby/test_avatars.py).
PALETTE = (
    "#1f5fbf",  # blue
    "#0f766e",  # teal
    "#7c3aed",  # violet
    "#b91c1c",  # red
    "#9a4d00",  # amber
    "#15803d",  # green
    "#be185d",  # pink
    "#4b5563",  # slate
)
AVATAR_INK = "#ffffff"

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619


def _clean(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _first_alnum(word: str) -> str:
    for char in word:
        if unicodedata.category(char)[0] in "LN":
            return char.upper()[0]
    return ""


def _words(text: str) -> list[str]:
    r"""Split at space separators (Unicode Zs) and tab/line breaks — exactly the JS regex
    ``/[\t\n\v\f\r\p{Zs}]+/u`` (``str.split()`` differs from JS ``\s`` at the edges)."""
    words: list[str] = []
    current: list[str] = []
    for char in text:
        if char in "\t\n\v\f\r" or unicodedata.category(char) == "Zs":
            words.append("".join(current))
            current = []
        else:
            current.append(char)
    words.append("".join(current))
    return [w for w in words if w]


def initials(name: str) -> str:
    """``"Pat Doe"`` → ``"PD"``, ``"Dr. Ann-Marie Lee"`` → ``"DL"``, ``"ada"`` → ``"A"``."""
    words = [w for w in (_first_alnum(word) for word in _words(_clean(name))) if w]
    if not words:
        return "?"
    return words[0] if len(words) == 1 else words[0] + words[-1]


def colour_index(name: str) -> int:
    """The palette slot of ``name`` (FNV-1a, 32-bit, over the code points of its words joined
    by one space: spacing does not change the colour)."""
    h = _FNV_OFFSET
    for char in " ".join(_words(_clean(name))):
        h ^= ord(char)
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h % len(PALETTE)
