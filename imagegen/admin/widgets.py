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


PLOT_COLOURS = ("#555", "#2271b1", "#c62828", "#2e7d32", "#b26a00", "#6a1b9a")


def ctr_plot(arms: list[dict], width: int = 420, height: int = 140):
    """An SVG of each arm's daily click-through (one line per arm, the original photo grey)."""
    days = sorted({d["day"] for a in arms for d in a["daily"]})
    values = [d["ctr"] for a in arms for d in a["daily"] if d["ctr"] is not None]
    if not days or not values:
        return "—"
    top = max(max(values), 0.01)
    pad = 24

    def x(day):
        return pad + (width - 2 * pad) * (days.index(day) / max(len(days) - 1, 1))

    def y(value):
        return height - pad - (height - 2 * pad) * value / top

    lines = []
    for i, arm in enumerate(arms):
        points = " ".join(f"{x(d['day']):.1f},{y(d['ctr']):.1f}" for d in arm["daily"] if d["ctr"] is not None)
        colour = PLOT_COLOURS[i % len(PLOT_COLOURS)]
        lines.append(format_html(
            '<polyline class="imagegen-ctr-line" points="{}" fill="none" stroke="{}" stroke-width="2"><title>{}</title></polyline>'
            '<text x="{}" y="{}" font-size="10" fill="{}">{}</text>',
            points, colour, arm["label"], width - pad * 4, 12 + 11 * i, colour, arm["label"],
        ))
    axis = format_html(
        '<text x="2" y="{}" font-size="10">{}</text><text x="2" y="{}" font-size="10">0</text>'
        '<text x="{}" y="{}" font-size="10">{}</text><text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>',
        pad, f"{top:.1%}", height - pad, pad, height - 6, days[0], width - pad, height - 6, days[-1],
    )
    return format_html(
        '<svg class="imagegen-ctr-plot" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="Daily click-through per arm">{}{}</svg>',
        width, height, width, height, axis, _join(lines),
    )


def _join(parts):
    from django.utils.safestring import mark_safe

    # Each part is already escaped by format_html.
    return mark_safe("".join(str(part) for part in parts))
