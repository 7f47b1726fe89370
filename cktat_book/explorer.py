"""An interactive view of a sweep for readers who run a chapter in Jupyter or Colab (ipywidgets, imported only
when the explorer is built): a dropdown over the runs; choosing one circles it on the trade-off plot and shows its
numbers and its training curves. On the static site the same information is a table and static figures.

`show_run` draws what the explorer shows for one run; `sweep_explorer` wires it to the dropdown. The explorer holds
an `HTML` widget (the run's row) and an `Image` widget (the figure as PNG), so it works without a kernel's output
capture and a test can drive it by setting the dropdown.
"""

from __future__ import annotations

import io

from .report import markdown_table
from .figures import _plt, tradeoff


def show_run(label: str, rows: dict[str, dict], histories: dict[str, list[dict]], panels: dict[str, dict],
             panel: str, robust: str, columns: list[str]):
    """(figure, markdown) for run `label`: the trade-off panels with that run circled in `panel`, beside its
    validation curves per epoch; and its row of the table (`columns` of rows[label])."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.4 * (len(panels) + 1), 5.0))
    r = rows[label]
    tradeoff(panels, highlight=(panel, r["natural"], r[robust]), axes=list(axes[:-1]))
    ax = axes[-1]
    for key in [k for k in histories[label][0] if k.startswith("val_")]:
        ax.plot([h["epoch"] for h in histories[label]], [h[key] for h in histories[label]], marker="o", markersize=3,
                label=key.replace("_", " "))
    ax.set_title(f"{label}: validation accuracy per epoch", fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, markdown_table([{"run": label, **r}], ["run"] + columns, digits=2)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    _plt().close(fig)
    return buf.getvalue()


def _html(markdown: str) -> str:
    """A markdown table as an HTML table (the widget shows HTML)."""
    lines = [line.strip().strip("|").split("|") for line in markdown.strip().splitlines()]
    head, body = lines[0], lines[2:]
    cell = lambda tag, c: f"<{tag} style='padding:2px 8px'>{c.strip()}</{tag}>"
    return ("<table><tr>" + "".join(cell("th", c) for c in head) + "</tr>" +
            "".join("<tr>" + "".join(cell("td", c) for c in r) + "</tr>" for r in body) + "</table>")


def sweep_explorer(rows: dict[str, dict], histories: dict[str, list[dict]], panels: dict[str, dict], panel: str,
                   robust: str, columns: list[str], value: str | None = None):
    """A dropdown over `rows` whose choice updates the run's row (HTML) and `show_run`'s figure (PNG)."""
    import ipywidgets as widgets  # optional dependency (the book extra): imported only when the explorer is built

    choose = widgets.Dropdown(options=list(rows), value=value or next(iter(rows)), description="run")
    table, image = widgets.HTML(), widgets.Image(format="png")

    def update(change=None):
        fig, markdown = show_run(choose.value, rows, histories, panels, panel, robust, columns)
        table.value, image.value = _html(markdown), _png(fig)

    choose.observe(update, names="value")
    update()
    return widgets.VBox([choose, table, image])
