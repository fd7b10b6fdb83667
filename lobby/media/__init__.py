"""Media backends (MEDIA-DESIGN.md)."""
