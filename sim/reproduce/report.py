r"""The report of a reproduction: one row per claim of the paper, as ``REPORT.md`` and as one
self-contained ``report.html`` (styles and figures inline, nothing fetched).

A :class:`Claim` is a sentence of the paper with where it stands (figure or equation), the
paper's number, the measured number with its confidence interval and a verdict of
:data:`VERDICTS`; ``not measurable`` carries the reason. :func:`write_report` writes both files
atomically, with every setting, seed, version and checksum given to it, so that the report
can be rerun exactly.

>>> c = Claim("symmetry", "circuits are symmetric at initialization", "eq. 14, fig. 3b",
...           paper="ψ = 0", measured=0.01, ci=(-0.02, 0.04), verdict="holds")
>>> c.measured_text()
'0.01 [-0.02, 0.04]'
>>> "| circuits are symmetric at initialization | eq. 14, fig. 3b |" in markdown([c], {})
True
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.runs import io
from umwelt.errors import ConfigError

__all__ = ["VERDICTS", "Claim", "html_page", "markdown", "write_report"]

#: the verdicts a claim can get
VERDICTS = ("holds", "does not hold", "not measurable at this scale")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and what the reproduction measured.

    Attributes:
        key: a short stable name (``weights_symmetric``).
        claim: the claim in one sentence.
        where: where in the paper (``fig. 3a``, ``eq. 14``, ``§5``).
        paper: the paper's number or statement, as text.
        measured: the measured number (``None`` when not measurable).
        ci: its confidence interval ``(low, high)`` (``None``: none).
        verdict: one of :data:`VERDICTS`.
        reason: why (required for ``not measurable at this scale``).
        figure: the figure that shows it (a PNG), or ``None``.
    """

    key: str
    claim: str
    where: str
    paper: str
    measured: float | None = None
    ci: tuple[float, float] | None = None
    verdict: str = "not measurable at this scale"
    reason: str = ""
    figure: Path | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ConfigError(f"claim {self.key!r}: verdict must be one of {VERDICTS}, got "
                              f"{self.verdict!r}")  # fmt: skip
        if self.verdict == VERDICTS[2] and not self.reason:
            raise ConfigError(f"claim {self.key!r}: 'not measurable' needs its reason")

    def measured_text(self) -> str:
        """The measured value with its interval, ``—`` when there is none."""
        if self.measured is None:
            return "—"
        text = f"{self.measured:.3g}"
        if self.ci is not None:
            text += f" [{self.ci[0]:.3g}, {self.ci[1]:.3g}]"
        return text


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(claims: list[Claim], settings: dict[str, Any], notes: list[str] = ()) -> str:
    """``REPORT.md``: the claim table, the notes, and every setting (as JSON)."""
    import json

    lines = ["# Reproduction report", "",
             "| claim | where | paper | measured [CI] | verdict | figure |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for c in claims:
        verdict = c.verdict + (f" ({c.reason})" if c.reason else "")
        fig = f"[{c.figure.name}](figures/{c.figure.name})" if c.figure else "—"
        lines.append(f"| {_cell(c.claim)} | {_cell(c.where)} | {_cell(c.paper)} | "
                     f"{c.measured_text()} | {_cell(verdict)} | {fig} |")  # fmt: skip
    if notes:
        lines += ["", "## Notes", "", *(f"- {_cell(n)}" for n in notes)]
    shown = json.dumps(io.to_jsonable(settings), indent=2, sort_keys=True)
    lines += ["", "## Settings, seeds, versions, checksums", "", "```json", shown, "```", ""]
    return "\n".join(lines)


_STYLE = (
    "body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .5em;"
    "vertical-align:top}th{background:#eee}.holds{color:#060}.does-not-hold{color:#a00}"
    ".not-measurable-at-this-scale{color:#666}img{max-width:100%}pre{background:#f6f6f6;"
    "padding:1em;overflow:auto}"
)


def _image(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def html_page(claims: list[Claim], settings: dict[str, Any], notes: list[str] = ()) -> str:
    """``report.html``: the same content on one self-contained page (each figure once, as a
    data URI, linked from the rows that show it)."""
    import json

    e = html.escape
    rows = []
    for c in claims:
        css = c.verdict.replace(" ", "-")
        verdict = e(c.verdict) + (f"<br><small>{e(c.reason)}</small>" if c.reason else "")
        fig = f'<a href="#fig-{e(Path(c.figure).stem)}">{e(c.figure.name)}</a>' if c.figure else "—"
        rows.append(f"<tr><td>{e(c.claim)}</td><td>{e(c.where)}</td><td>{e(c.paper)}</td>"
                    f"<td>{e(c.measured_text())}</td><td class=\"{css}\">{verdict}</td>"
                    f"<td>{fig}</td></tr>")  # fmt: skip
    shown: dict[Path, list[Claim]] = {}  # each figure once, with the claims it shows
    for c in claims:
        if c.figure:
            shown.setdefault(Path(c.figure), []).append(c)
    figures = [f'<h3 id="fig-{e(path.stem)}">{e(path.name)}: '
               f'{e("; ".join(dict.fromkeys(c.where for c in cs)))}</h3>{_image(path)}'
               for path, cs in shown.items()]  # fmt: skip
    notes_html = "".join(f"<li>{e(n)}</li>" for n in notes)
    body = (
        "<h1>Reproduction report</h1><table><thead><tr><th>claim</th><th>where</th>"
        "<th>paper</th><th>measured [CI]</th><th>verdict</th><th>figure</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        + (f"<h2>Notes</h2><ul>{notes_html}</ul>" if notes else "")
        + "<h2>Figures</h2>" + "".join(figures)
        + "<h2>Settings, seeds, versions, checksums</h2><pre>"
        + e(json.dumps(io.to_jsonable(settings), indent=2, sort_keys=True)) + "</pre>"
    )  # fmt: skip
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>Reproduction report</title><style>{_STYLE}</style></head>"
            f"<body>{body}</body></html>\n")  # fmt: skip


def write_report(
    out: Path, claims: list[Claim], settings: dict[str, Any], notes: list[str] = ()
) -> tuple[Path, Path]:
    """Write ``out/REPORT.md`` and ``out/report.html`` (atomically); their paths.

    Raises:
        ConfigError: for two claims with one key, or a figure that does not exist.
    """
    keys = [c.key for c in claims]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"claim keys must be distinct, got {keys}")
    for c in claims:
        if c.figure is not None and not Path(c.figure).is_file():
            raise ConfigError(f"claim {c.key!r}: no figure {str(c.figure)!r}")
    out = Path(out)
    md, page = markdown(claims, settings, notes), html_page(claims, settings, notes)
    return (
        io.atomic_write(out / "REPORT.md", lambda tmp: tmp.write_text(md, encoding="utf-8")),
        io.atomic_write(out / "report.html", lambda tmp: tmp.write_text(page, encoding="utf-8")),
    )
