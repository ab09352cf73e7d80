"""The rich table of ``tinyir check`` for people: findings grouped by node, then figures."""

from __future__ import annotations

from itertools import groupby

from rich.console import Console
from rich.table import Table

from tinyir.op_support.boards import fmt_size
from tinyir.op_support.report import ModelReport
from tinyir.summary import MAC_CONVENTION

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def render(con: Console, r: ModelReport) -> None:
    verdict = "[bold green]deployable[/]" if r.deployable else "[bold red]not deployable[/]"
    board = f" on {r.board.name} ({r.board.mcu})" if r.board else ""
    con.print(f"[bold]{r.model}[/]  ->  {r.backend}{board}: {verdict}")
    findings = r.findings + r.gate
    if findings:
        t = Table(show_header=True, header_style="bold", show_lines=False, expand=False)
        t.add_column("node")
        t.add_column("rule")
        t.add_column("sev")
        t.add_column("message", overflow="fold")
        t.add_column("evidence", overflow="fold")
        ordered = sorted(findings, key=lambda f: (f.node is None, f.node or ""))
        for node, group in groupby(ordered, key=lambda f: f.node):
            for i, f in enumerate(group):
                ev = ", ".join(f"{k}={v}" for k, v in f.evidence.items()
                               if k not in ("backend", "method", "board") and len(str(v)) < 80)
                t.add_row((node or "(model)") if i == 0 else "", f.rule,
                          f"[{_STYLE.get(f.severity, '')}]{f.severity}[/]", f.message, ev)
        con.print(t)
    fp = r.footprint
    s = Table(title="resources", show_header=True, header_style="bold")
    s.add_column("")
    s.add_column("needed", justify="right")
    s.add_column("budget", justify="right")
    s.add_column("how it was measured", overflow="fold")
    s.add_row("SRAM", _b(fp.sram.bytes), _budget(fp.sram.bytes, r.sram_budget), fp.sram.method)
    if fp.sram_mcu is not None:
        s.add_row("SRAM (32-bit MCU)", _b(fp.sram_mcu.bytes), _budget(fp.sram_mcu.bytes,
                  r.sram_budget), fp.sram_mcu.method)
    s.add_row("flash", _b(fp.flash.bytes), _budget(fp.flash.bytes, r.flash_budget),
              fp.flash.method)
    con.print(s)
    sm = r.summary
    unsupported = r.nodes_lowered - r.nodes_supported
    con.print(f"op coverage: {r.nodes_supported}/{r.nodes_lowered} lowered nodes supported"
              + (f" ({unsupported} not)" if unsupported else "")
              + f"; {sm.n_nodes} nodes in the model; {sm.params:,} parameters; "
              f"{sm.macs:,} MACs [dim]({MAC_CONVENTION})[/]")
    n_err = len(r.errors)
    n_warn = sum(1 for f in r.findings if f.severity == "warning")
    line = f"{n_err} error(s), {n_warn} warning(s)"
    if r.baseline is not None:
        line += f"; gate vs {r.baseline}: " + ("[green]pass[/]" if r.passed else
                                               f"[red]fail ({len(r.gate)})[/]")
    con.print(line + "\n")


def _b(n):
    return "?" if n is None else fmt_size(n)


def _budget(need, budget):
    if budget is None:
        return "-"
    if need is None:
        return fmt_size(budget)
    pct = 100 * need / budget
    style = "red" if need > budget else "green"
    return f"{fmt_size(budget)} [{style}]({pct:.0f}%)[/]"
