"""The reproduction report: one row per claim in REPORT.md and in a valid, self-contained
report.html (checked by parsing it: balanced tags, nothing fetched, the figures inline)."""

import base64
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.figure import Figure

from sim.reproduce.report import Claim, write_report
from umwelt.errors import ConfigError

VOID = {"meta", "img", "br", "hr", "link", "input"}


class _Checker(HTMLParser):
    """Tag balance, every URL, the images' data and the table rows of a page."""

    def __init__(self):
        super().__init__()
        self.stack, self.urls, self.images, self.rows, self.errors = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [a[k] for k in ("src", "href") if k in a]
        if tag == "img":
            self.images.append(a["src"])
        if tag == "tr" and "tbody" in self.stack:
            self.rows += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


@pytest.fixture
def figure(tmp_path):
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot(np.arange(5))
    path = tmp_path / "figures" / "weights_ridgeline.png"
    path.parent.mkdir()
    fig.savefig(path)
    return path


def test_every_claim_is_a_row_of_both_pages_and_the_html_is_self_contained(tmp_path, figure):
    claims = [
        Claim("weights", "weights stay symmetric <through> training", "fig. 3a", paper="skew ≈ 0",
              measured=0.012, ci=(-0.01, 0.03), verdict="holds", figure=figure),
        Claim("coupling", "an entry couples to 3.39e-4 of the entries", "fig. 7c",
              paper="3.39·10⁻⁴", verdict="not measurable at this scale",
              reason="K = 200 sampled entries bound it at log K / log N"),
        Claim("zero_error", "training accuracy reaches 1 | a pipe", "fig. 8b", paper="1.0",
              measured=0.97, verdict="does not hold"),
    ]  # fmt: skip
    md, page = write_report(tmp_path, claims, {"seed": 0, "width": 0.125}, ["the paper: N=8.68e12"])
    text = md.read_text()
    table = [ln for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(table) == 1 + len(claims)  # header and one row each
    assert "0.012 [-0.01, 0.03]" in text and "\\|" in text and '"width": 0.125' in text
    checker = _Checker()
    checker.feed(page.read_text())
    assert not checker.errors and checker.stack == []
    assert checker.rows == len(claims)
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in checker.urls), checker.urls
    (img,) = checker.images
    assert base64.b64decode(img.split(",", 1)[1]) == figure.read_bytes()
    assert "&lt;through&gt;" in page.read_text()  # text is escaped


@pytest.mark.parametrize(
    ("kw", "needle"),
    [({"verdict": "maybe"}, "verdict must be one of"),
     ({"verdict": "not measurable at this scale"}, "needs its reason")],
)  # fmt: skip
def test_a_claim_needs_a_known_verdict_and_a_reason_when_not_measurable(kw, needle):
    with pytest.raises(ConfigError, match=needle):
        Claim("k", "c", "fig. 1", paper="p", **kw)


def test_duplicate_keys_and_missing_figures_are_refused_before_writing(tmp_path):
    a = Claim("k", "c", "fig. 1", paper="p", measured=1.0, verdict="holds")
    with pytest.raises(ConfigError, match="distinct"):
        write_report(tmp_path, [a, a], {})
    b = Claim("f", "c", "fig. 1", paper="p", verdict="holds", figure=tmp_path / "none.png")
    with pytest.raises(ConfigError, match="no figure"):
        write_report(tmp_path, [b], {})
    assert not list(tmp_path.iterdir())
