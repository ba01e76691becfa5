"""Charts for the HTML report: matplotlib (Agg backend) drawn as inline SVG text."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: files only, on a server as on a laptop

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from synergie.reporting.report import Chart  # noqa: E402

BAR = "#2f6f4f"
REFERENCE = "#c9c9c9"


def svg(chart: Chart) -> str:
    """Return the chart as an ``<svg>`` element (text kept as text, no XML prologue)."""
    with plt.rc_context({"svg.fonttype": "none", "font.size": 9, "svg.hashsalt": "synergie"}):
        fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(chart.labels) + 0.9))
        try:
            positions = range(len(chart.labels))
            height = 0.38 if chart.reference else 0.7
            ax.barh([p - (height / 2 if chart.reference else 0) for p in positions], chart.values,
                    height=height, color=BAR, label="Réalisé")  # fmt: skip
            if chart.reference:
                ax.barh([p + height / 2 for p in positions],
                        [r or 0 for r in chart.reference], height=height, color=REFERENCE,
                        label="Référence")  # fmt: skip
                ax.legend(loc="lower right", frameon=False)
            ax.set_yticks(list(positions), chart.labels)
            ax.invert_yaxis()
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # companies, synergies: whole
            ax.set_title(chart.title, loc="left")
            if chart.unit:
                ax.set_xlabel(chart.unit)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            fig.tight_layout()
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]
