"""``{% load avatars %}{% avatar name %}``: the initials avatar of lobby/avatars.py."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from lobby import avatars

register = template.Library()


@register.simple_tag
def avatar(name: object) -> SafeString:
    """A decorative circle (``aria-hidden``): the name beside it is what people read."""
    text = str(name or "")
    return format_html(
        '<span class="avatar avatar-{}" aria-hidden="true">{}</span>',
        avatars.colour_index(text),
        avatars.initials(text),
    )
