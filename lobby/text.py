"""Display text: does a name show anything at all?

A name made only of characters that draw nothing — spaces, zero-width and format characters,
combining marks with no base, Hangul fillers, the blank braille pattern — shows as an empty row
on the dashboard, so moderators cannot tell who is knocking. Every place that accepts a name
(knock, rename, meeting tokens, REST) treats such a name as empty.
"""

from __future__ import annotations

import unicodedata

# General categories that draw no glyph of their own: separators (Zs, Zl, Zp), controls and
# format characters (Cc, Cf: zero-width space, joiners, bidi marks, tags...), surrogates,
# private use and unassigned (Cs, Co, Cn), and marks (Mn, Mc, Me), which only modify a base.
_INVISIBLE_CATEGORIES = frozenset(
    {"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Mc", "Me"}
)
# Letters and symbols that Unicode defines but fonts draw blank: the Hangul fillers (Lo, and
# Default_Ignorable_Code_Point) and the empty braille cell (So).
_BLANK_GRAPHICS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})


def is_visible(char: str) -> bool:
    """True if ``char`` (one code point) draws something."""
    return char not in _BLANK_GRAPHICS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def is_blank(value: str) -> bool:
    """True if ``value`` has no visible character (the empty string included)."""
    return not any(is_visible(c) for c in value)
