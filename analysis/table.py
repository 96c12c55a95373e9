"""A table as the analysis builds it, and its three renderings: Markdown, LaTeX and CSV."""
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Table:
    name: str                      # file stem
    title: str
    display: pd.DataFrame          # formatted strings; the index holds the row labels
    data: pd.DataFrame             # the numbers behind it, written to the CSV
    bold: set = field(default_factory=set)    # (row label, column) pairs shown in bold
    notes: list = field(default_factory=list)


def frame(columns: dict, index, index_name: str) -> pd.DataFrame:
    """A display frame from columns given positionally (Series indices are ignored, not aligned)."""
    return pd.DataFrame({name: list(values) for name, values in columns.items()},
                        index=pd.Index(list(index), name=index_name))


def _cells(table: Table, bold) -> list[list[str]]:
    rows = []
    for label, row in table.display.iterrows():
        rows.append([str(label)] + [bold(v) if (label, c) in table.bold else str(v) for c, v in row.items()])
    return rows


def markdown_lines(table: Table) -> list[str]:
    """The title, the table and its notes: what a page that holds several tables shows of each."""
    header = [table.display.index.name or ""] + [str(c) for c in table.display.columns]
    lines = [f"### {table.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in _cells(table, lambda v: f"**{v}**")]
    return lines + [""] + [f"{note}  " for note in table.notes]


def to_markdown(table: Table, provenance: str) -> str:
    return "\n".join([f"<!-- {provenance} -->", *markdown_lines(table), f"_{provenance}_", ""])


def latex_escape(text: str) -> str:
    for plain, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"),
                           ("_", r"\_"), ("$", r"\$"), ("±", r"$\pm$"), ("†", r"$^\dagger$"),
                           ("—", "--"), ("≠", r"$\neq$"), ("·", r"$\cdot$"), ("√n", r"$\sqrt{n}$")):
        text = text.replace(plain, escaped)
    return text


def to_latex(table: Table, provenance: str) -> str:
    header = [table.display.index.name or ""] + [str(c) for c in table.display.columns]
    body = _cells(table, lambda v: r"\textbf{" + latex_escape(str(v)) + "}")
    lines = [f"% {provenance}", r"% needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
             r"\caption{" + latex_escape(table.title) + "}", r"\label{tab:" + table.name + "}",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    for row in body:
        lines.append(" & ".join(c if c.startswith(r"\textbf") else latex_escape(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [r"\par\footnotesize " + latex_escape(note) for note in table.notes]
    lines += [r"\end{table}", ""]
    return "\n".join(lines)


def to_csv(table: Table, provenance: str) -> str:
    comments = [f"# {table.title}", f"# {provenance}"] + [f"# {note}" for note in table.notes]
    return "\n".join(comments) + "\n" + table.data.to_csv(index=False)
