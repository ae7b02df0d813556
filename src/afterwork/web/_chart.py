"""Inline SVG charts (no library, no script): tasks per minute, succeeded (green) under failed
(red); and per task name, a p50 bar inside its p95 bar."""

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


def seconds_text(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def spread_svg(rows: list[dict[str, Any]], low: str, high: str, label: str) -> str:
    """One row per task name: the `low` figure (p50) as a solid bar inside the `high` (p95)."""
    shown = [r for r in rows if r[high] is not None][:20]
    if not shown:
        return "<p class='empty'>No finished task in this window.</p>"
    row_h, name_w, right = 22, 260, 90
    peak = max(r[high] for r in shown) or 1.0
    span = WIDTH - name_w - right
    bars = []
    for i, r in enumerate(shown):
        y = 6 + i * row_h
        wide, narrow = max(1.0, r[high] / peak * span), max(1.0, r[low] / peak * span)
        title = escape(f"{r['name']}: p50 {seconds_text(r[low])}, p95 {seconds_text(r[high])}")
        bars.append(
            f'<g><title>{title}</title>'
            f'<text x="{name_w - 8}" y="{y + 14}" font-size="12" text-anchor="end">'
            f'{escape(r["name"][-40:])}</text>'
            f'<rect x="{name_w}" y="{y + 3}" width="{wide:.1f}" height="14" class="p95"/>'
            f'<rect x="{name_w}" y="{y + 3}" width="{narrow:.1f}" height="14" class="p50"/>'
            f'<text x="{name_w + wide + 6:.1f}" y="{y + 14}" font-size="11">'
            f'{escape(seconds_text(r[high]))}</text></g>')
    height = 12 + len(shown) * row_h
    return (f'<svg role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" class="chart">{"".join(bars)}</svg>')
