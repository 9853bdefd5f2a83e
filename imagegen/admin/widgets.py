"""Small HTML fragments the admin pages share."""
from django.utils.html import format_html

STATE_COLOURS = {
    "queued": "#777",
    "running": "#2271b1",
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#999",
    "pending": "#b26a00",
    "approved": "#2e7d32",
    "rejected": "#c62828",
}


def thumbnail(field_file, size: int = 96, alt: str = ""):
    if not field_file:
        return "—"
    return format_html(
        '<a href="{0}" target="_blank"><img src="{0}" alt="{1}" width="{2}" height="{2}" '
        'style="object-fit:contain;background:#f4f4f4;border:1px solid #ddd" class="imagegen-thumb"></a>',
        field_file.url,
        alt,
        size,
    )


def state_badge(value: str, label: str):
    return format_html(
        '<span class="imagegen-state imagegen-state-{}" style="color:#fff;background:{};padding:2px 6px;'
        'border-radius:3px">{}</span>',
        value,
        STATE_COLOURS.get(value, "#555"),
        label,
    )


def progress_bar(percent: int):
    return format_html('<progress max="100" value="{0}" title="{0}%">{0}%</progress> {0}%', percent)
