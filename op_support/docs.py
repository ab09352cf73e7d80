"""Supported-ops pages generated from a backend table (``docs/SUPPORTED_OPS_<backend>.md``).

The page is data from the table: every op with its element types, rank limit and note,
then every rule with its id, severity and message template.  A test regenerates the
committed page and fails when it is stale::

    python -m tinyir.op_support.docs tflm > docs/SUPPORTED_OPS_tflm.md
"""

from __future__ import annotations

import sys

from tinyir.op_support.check import generic_rules, load_table
from tinyir.op_support.rules import Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _dtypes(pairs) -> str:
    if not pairs:
        return "any"
    if all(a == b for a, b in pairs):
        return ", ".join(a for a, _ in pairs)
    return ", ".join(f"{a}->{b}" for a, b in pairs)


def supported_ops_markdown(table: Table) -> str:
    """The supported-ops page of ``table`` as Markdown."""
    builtins = sorted(k for k in table.ops if not k.startswith("tfl.CUSTOM:"))
    customs = sorted(k for k in table.ops if k.startswith("tfl.CUSTOM:"))
    lines = [f"# Supported operators: {table.title}", "",
             f"Generated from `op_support/{table.backend}.py` "
             f"(source: `{table.source}`); do not edit by hand.", "",
             f"{len(builtins)} ops and {len(customs)} custom ops. Element types are the "
             "(first input -> first output) pairs the kernels run; one name means the "
             "output has the input's type.", ""]
    for title, keys in (("Ops", builtins), ("Custom ops", customs)):
        if not keys:
            continue
        lines += [f"## {title}", "", "| op | element types | max rank | notes |",
                  "| --- | --- | --- | --- |"]
        for k in keys:
            s = table.ops[k]
            rank = "-" if s.max_rank is None else str(s.max_rank)
            lines.append(f"| `{k}` | {_dtypes(s.dtypes)} | {rank} | {_cell(s.note)} |")
        lines.append("")
    lines += ["## Rules", "",
              "Each finding's message is its rule's template filled with the values found "
              "in the model.", "", "| rule | severity | applies to | message |",
              "| --- | --- | --- | --- |"]
    for r in generic_rules(table.backend) + table.rules:
        where = "graph" if r.graph_level else \
            "every node" if r.ops is None else ", ".join(f"`{o}`" for o in r.ops)
        lines.append(f"| `{r.id}` | {r.severity} | {where} | {_cell(r.template)} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(supported_ops_markdown(load_table(sys.argv[1] if len(sys.argv) > 1
                                                       else "tflm")))
