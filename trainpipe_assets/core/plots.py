"""Small figures for the Dagster UI: matplotlib on the Agg canvas (no pyplot, no display), saved as palette PNGs
and inlined in markdown metadata as `data:` images, which the UI's markdown renders."""

from __future__ import annotations

import base64
import io

FIGURE_INCHES = (4.0, 3.0)
DPI = 80
PNG_COLORS = 64  # palette PNGs: a line plot is a few distinct colours, a third of the size of full RGBA


def figure(width: float = FIGURE_INCHES[0], height: float = FIGURE_INCHES[1], panels: int = 1):
    """A matplotlib Figure on the Agg canvas (no pyplot: no global state, safe in any thread) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for ax in axes:
        ax.tick_params(labelsize=7)
    return fig, list(axes)


def png_bytes(fig) -> bytes:
    """The figure as a palette PNG: small enough to inline in event-log metadata."""
    from PIL import Image

    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=DPI, metadata={"Software": None})
    image = Image.open(io.BytesIO(raw.getvalue())).convert("RGB").quantize(colors=PNG_COLORS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def image_markdown(fig, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png_bytes(fig)).decode('ascii')})"
