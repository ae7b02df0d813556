"""Tasks per minute as an inline SVG bar chart: succeeded (green) under failed (red)."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 720, 160, 24  # pixels


def per_minute_svg(minutes: list[dict[str, Any]]) -> str:
    peak = max((m["succeeded"] + m["failed"] for m in minutes), default=0) or 1
    bar = (WIDTH - 2 * PAD) / max(1, len(minutes))
    scale = (HEIGHT - 2 * PAD) / peak
    bars = []
    for i, m in enumerate(minutes):
        x = PAD + i * bar
        ok_h, bad_h = m["succeeded"] * scale, m["failed"] * scale
        base = HEIGHT - PAD
        label = escape(f"{m['minute'][11:16]} UTC: {m['succeeded']} succeeded, {m['failed']} failed")
        bars.append(
            f'<g><title>{label}</title>'
            f'<rect x="{x:.1f}" y="{base - ok_h:.1f}" width="{bar * 0.8:.1f}" '
            f'height="{ok_h:.1f}" class="ok"/>'
            f'<rect x="{x:.1f}" y="{base - ok_h - bad_h:.1f}" width="{bar * 0.8:.1f}" '
            f'height="{bad_h:.1f}" class="bad"/></g>'
        )
    first = escape(minutes[0]["minute"][11:16]) if minutes else ""
    return (
        f'<svg role="img" aria-label="tasks per minute" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" class="chart">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>'
        f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="11">{first} UTC</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" font-size="11" text-anchor="end">now</text>'
        f'<text x="{PAD}" y="14" font-size="11">peak {peak}/min</text>'
        + "".join(bars) + "</svg>"
    )
