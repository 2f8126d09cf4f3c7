"""The reproduction report: ``report.md`` and a self-contained ``report.html``.

Each study contributes a :class:`StudyOutcome`: its figures, key numbers, the reference work's
published value or trend, what this run measured, and whether the trend is reproduced.  The HTML
embeds every figure as a data URI, so the one file can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markdown

from memlearn.io import atomic_write


@dataclass
class StudyOutcome:
    """One study's result, as the report shows it. Paths are relative to the report directory."""

    key: str
    title: str
    reference: str
    observed: str
    reproduced: bool
    figures: list[str] = field(default_factory=list)
    data_files: list[str] = field(default_factory=list)
    numbers: list[tuple[str, str]] = field(default_factory=list)
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "reference": self.reference,
            "observed": self.observed,
            "reproduced": self.reproduced,
            "figures": self.figures,
            "data_files": self.data_files,
            "numbers": [list(n) for n in self.numbers],
            "notes": self.notes,
        }


def render_markdown(
    outcomes: list[StudyOutcome], run_info: dict[str, Any], title: str = "memlearn reproduction"
) -> str:
    """The report as Markdown: a summary table, then one section per study."""
    config = run_info.get("config", {})
    versions = run_info.get("versions", {})
    lines = [f"# {title}", ""]
    lines.append(
        "Reference: Pallo et al., *On Chip Customized Learning on Resistive Memory Technology "
        "for Secure Edge AI*, VLSI Symposium 2025 (REFERENCE.md §1)."
    )
    lines.append("")
    lines.append(
        "Run: "
        + ", ".join(f"{k} = `{v}`" for k, v in config.items())
        + f"; created {run_info.get('created_utc', '?')}."
    )
    lines.append("")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    lines.append("")
    n_ok = sum(o.reproduced for o in outcomes)
    lines += [f"**{n_ok} of {len(outcomes)} published trends reproduced.**", ""]
    lines += ["| study | published | this run | reproduced |", "|---|---|---|---|"]
    for o in outcomes:
        mark = "yes" if o.reproduced else "**no**"
        lines.append(
            f"| [{_cell(o.title)}](#{_anchor(o.title)}) | {_cell(o.reference)} | "
            f"{_cell(o.observed)} | {mark} |"
        )
    lines.append("")
    for o in outcomes:
        lines += [f"## {o.title}", ""]
        lines += [f"*Published:* {o.reference}", "", f"*This run:* {o.observed}", ""]
        lines += [f"*Trend reproduced:* {'yes' if o.reproduced else 'no'}", ""]
        for fig in o.figures:
            lines += [f"![{o.title}]({fig})", ""]
        if o.numbers:
            lines += ["| quantity | value |", "|---|---|"]
            lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in o.numbers]
            lines.append("")
        if o.notes:
            lines += [o.notes, ""]
        if o.data_files:
            lines += ["Data: " + ", ".join(f"[{d}]({d})" for d in o.data_files), ""]
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    outcomes: list[StudyOutcome],
    run_info: dict[str, Any],
    title: str = "memlearn reproduction",
) -> tuple[Path, Path]:
    """Write ``report.md`` and the self-contained ``report.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    text = render_markdown(outcomes, run_info, title)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    with atomic_write(md_path) as handle:
        handle.write(text)
    with atomic_write(html_path) as handle:
        handle.write(render_html(text, out_dir, title))
    return md_path, html_path


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #bbb;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#f0f0f0}img{max-width:100%}
code{background:#f4f4f4;padding:0 .2rem}h2{border-bottom:1px solid #ddd;margin-top:2.5rem}
"""


def render_html(markdown_text: str, base_dir: Path, title: str) -> str:
    """Markdown → one HTML page; local PNG figures are embedded as base64 data URIs."""
    body = markdown.markdown(markdown_text, extensions=["tables", "toc"])

    def embed(match: re.Match[str]) -> str:
        src = html.unescape(match.group(1))
        path = base_dir / src
        if src.startswith(("http:", "https:", "data:")) or not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]+\.png)"', embed, body)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _anchor(title: str) -> str:
    """The id the Markdown ``toc`` extension gives a heading."""
    slug = re.sub(r"[^\w\s-]", "", title.lower()).strip()
    return re.sub(r"[-\s]+", "-", slug)
