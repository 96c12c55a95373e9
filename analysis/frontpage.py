"""results/<tier>/README.md, the front page: did it reproduce (the claims), the paper's metric beside the paper's
numbers, then one line per file in the folder, each with the title it was written under."""
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .output import Written, write_text
from .table import Table, markdown_lines

NAME = "README.md"
SECTIONS = ("## 1. Did it reproduce? The paper's headline claims",
            "## 2. The paper's metric beside the paper's numbers",
            "## 3. Every table and figure")


@dataclass(frozen=True)
class Headline:
    claims: Table
    comparison: Table   # the paper's metric beside the paper's published numbers
    ours: Table         # our runs in the paper's metric and layout: shown when no task of ours is one of the paper's
    paper_csv: Path     # the paper's table in this folder


def link(path: Path, out: Path, text: str | None = None) -> str:
    relative = path.relative_to(out).as_posix()
    return f"[{text or relative}]({quote(relative)})"


def heading(path: Path) -> str:
    """A Markdown file's first heading (what files written by other commands are called here)."""
    if path.suffix != ".md":
        return ""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next((line.lstrip("#").strip() for line in lines if line.startswith("#")), "")


def index_line(entry: Written, out: Path) -> str:
    first, *others = entry.paths
    return f"- {' · '.join([link(first, out)] + [link(p, out, p.suffix) for p in others])}: {entry.title}"


def index(written: list[Written], out: Path) -> list[str]:
    """The files this run wrote, grouped by folder; then every other file here (other commands', earlier runs')."""
    lines, groups = [], {}
    for entry in written:
        groups.setdefault(entry.paths[0].parent, []).append(entry)
    for folder, entries in sorted(groups.items(), key=lambda item: item[0] == out):  # tables/, figures/, then here
        lines += ["", f"### {folder.relative_to(out).as_posix() + '/' if folder != out else 'this folder'}", ""]
        lines += [index_line(entry, out) for entry in entries]
    ours = {p for entry in written for p in entry.paths} | {out / NAME}
    others = sorted(p for folder in {out, *groups} for p in folder.iterdir() if p.is_file() and p not in ours)
    if others:
        lines += ["", "### Not written by this command (another command's, or left from an earlier run)", ""]
        lines += [f"- {link(p, out)}" + (f": {heading(p)}" if heading(p) else "") for p in others]
    return lines


def paper_section(headline: Headline, out: Path) -> list[str]:
    source = f"The paper's numbers: {link(headline.paper_csv, out)}."
    if len(headline.comparison.data):
        return [source, "", *markdown_lines(headline.comparison)]
    return [f"{source} None of the tasks here is one of the paper's, so there is nothing to set beside them "
            "row by row; our runs in the paper's metric and layout:", "", *markdown_lines(headline.ours)]


def front_page(out: Path, headline: Headline, written: list[Written], provenance: str) -> str:
    lines = [f"# Results: {out.resolve().name}", "", f"_{provenance}_",
             "", SECTIONS[0], "", *markdown_lines(headline.claims),
             "", SECTIONS[1], "", *paper_section(headline, out),
             "", SECTIONS[2], *index(written, out), ""]
    return "\n".join(lines)


def write_front_page(out: Path, headline: Headline, written: list[Written], provenance: str) -> Path:
    return write_text(out / NAME, front_page(out, headline, written, provenance))
