"""Inline SVG charts (no library, no script): tasks per minute (and a small one per queue),
succeeded (green) under failed (red); and per task name, a p50 bar inside its p95 bar."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 720, 160, 24  # pixels


def _stacked_bars(buckets: list[dict[str, Any]], width: float, height: float, pad: float,
                  span: str = "") -> tuple[str, int]:
    """Each bucket's succeeded bar with its failed bar on top; (the SVG's bars, the peak).
    `span`: how long a bucket lasts, said after its start on hover."""
    peak = max((m["succeeded"] + m["failed"] for m in buckets), default=0) or 1
    bar = (width - 2 * pad) / max(1, len(buckets))
    scale = (height - 2 * pad) / peak
    base = height - pad
    bars = []
    for i, m in enumerate(buckets):
        x = pad + i * bar
        ok_h, bad_h = m["succeeded"] * scale, m["failed"] * scale
        label = escape(f"{m['minute'][11:16]} UTC{span}: {m['succeeded']} succeeded, "
                       f"{m['failed']} failed")
        bars.append(
            f'<g><title>{label}</title>'
            f'<rect x="{x:.1f}" y="{base - ok_h:.1f}" width="{bar * 0.8:.1f}" '
            f'height="{ok_h:.1f}" class="ok"/>'
            f'<rect x="{x:.1f}" y="{base - ok_h - bad_h:.1f}" width="{bar * 0.8:.1f}" '
            f'height="{bad_h:.1f}" class="bad"/></g>'
        )
    return "".join(bars), peak


def per_minute_svg(minutes: list[dict[str, Any]]) -> str:
    bars, peak = _stacked_bars(minutes, WIDTH, HEIGHT, PAD)
    first = escape(minutes[0]["minute"][11:16]) if minutes else ""
    return (
        f'<svg role="img" aria-label="tasks per minute" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" class="chart">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>'
        f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="11">{first} UTC</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" font-size="11" text-anchor="end">now</text>'
        f'<text x="{PAD}" y="14" font-size="11">peak {peak}/min</text>'
        + bars + "</svg>"
    )


def spark_svg(buckets: list[dict[str, Any]], label: str) -> str:
    """A small chart for a table cell: succeeded under failed per bucket, no axis text (each
    bar's figures on hover)."""
    width, height = 132, 32
    bars, peak = _stacked_bars(buckets, width, height, 2, " + 5 min")
    return (f'<svg role="img" aria-label="{escape(label)}, peak {peak}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" class="chart spark">'
            f'<line x1="2" y1="{height - 2}" x2="{width - 2}" y2="{height - 2}"/>{bars}</svg>')


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
