"""The deployability report: findings + figures per model, and the baseline gate.

:func:`check_model` lowers a graph for a backend, runs its table, adds the budget
findings (SRAM and flash against ``--sram``/``--flash``/``--board``) and returns a
:class:`ModelReport`.  :func:`apply_baseline` turns a report into a pre-merge gate:
growth beyond the tolerance, or a finding not in the baseline, fails.  Renderers for
JSON (schema ``tinyir.check/1``, see ``schema/check-report.schema.json``) and SARIF
2.1.0 live here; the rich table is in ``render.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tinyir import __version__
from tinyir.graph import Graph
from tinyir.op_support.boards import Board, fmt_size
from tinyir.op_support.check import check_graph, load_table, op_key
from tinyir.op_support.footprint import Footprint, footprint
from tinyir.op_support.rules import BUDGET, ERROR, Finding, Rule
from tinyir.summary import Summary, summarize

SCHEMA_ID = "tinyir.check/1"
SCHEMA_FILE = Path(__file__).with_name("schema") / "check-report.schema.json"


def _over_sram(_node, _ctx):
    """The model needs {need} of SRAM ({method}), more than the {budget} budget{board}."""


def _over_flash(_node, _ctx):
    """The model needs {need} of flash ({method}), more than the {budget} budget{board}."""


def _gate_growth(_node, _ctx):
    """{what} grew from {old} to {new} ({pct:+.1f}%), beyond the {tol:.1f}% tolerance of the
    baseline."""


def _gate_new(_node, _ctx):
    """New finding not in the baseline: {rule} on {where}."""


def budget_rules(backend: str) -> tuple[Rule, Rule]:
    return (Rule(f"{backend}.budget.sram", _over_sram, None, ERROR, BUDGET),
            Rule(f"{backend}.budget.flash", _over_flash, None, ERROR, BUDGET))


GATE_GROWTH = Rule("gate.growth", _gate_growth, None, ERROR, BUDGET)
GATE_NEW = Rule("gate.new-finding", _gate_new, None, ERROR, "gate")


@dataclass
class ModelReport:
    model: str
    backend: str
    summary: Summary
    footprint: Footprint
    findings: list[Finding]
    board: Board | None = None
    sram_budget: int | None = None
    flash_budget: int | None = None
    nodes_lowered: int = 0
    nodes_supported: int = 0
    gate: list[Finding] = field(default_factory=list)
    baseline: str | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def deployable(self) -> bool:
        return not self.errors

    @property
    def passed(self) -> bool:
        """The exit verdict: deployable, or (with a baseline) no growth and no new finding."""
        if self.baseline is not None:
            return not self.gate and not [f for f in self.errors if f.category == BUDGET]
        return self.deployable

    def to_json(self) -> dict:
        fp = self.footprint
        return {
            "model": self.model, "backend": self.backend,
            "board": None if self.board is None else {
                "name": self.board.name, "mcu": self.board.mcu, "sram": self.board.sram,
                "flash": self.board.flash},
            "budget": {"sram": self.sram_budget, "flash": self.flash_budget},
            "deployable": self.deployable, "passed": self.passed,
            "figures": {**fp.to_json(), "macs": self.summary.macs, "params": self.summary.params,
                        "nodes": self.summary.n_nodes,
                        "nodes_lowered": self.nodes_lowered,
                        "nodes_supported": self.nodes_supported},
            "summary": self.summary.to_json(),
            "findings": [f.to_json() for f in self.findings],
            "gate": {"baseline": self.baseline, "findings": [f.to_json() for f in self.gate]},
        }


def check_model(graph: Graph, model: str, backend: str, board: Board | None = None,
                sram: int | None = None, flash: int | None = None) -> ModelReport:
    """Lower ``graph`` for ``backend``, check it, and measure it against the budget."""
    from tinyir.backends.lowering import lower_for

    load_table(backend)  # fail early on an unknown backend
    graph.verify()
    summary = summarize(graph)
    lowered = lower_for(backend, graph)
    findings = list(lowered.findings)
    findings += check_graph(lowered.graph, backend, origin=lowered.origin_of)
    fp = footprint(lowered.graph, backend, lowered.origin_of)
    sram_budget = sram if sram is not None else (board.sram if board else None)
    flash_budget = flash if flash is not None else (board.flash if board else None)
    on_board = f" of {board.name}" if board else ""
    sram_rule, flash_rule = budget_rules(backend)
    for rule, fig, budget in ((sram_rule, fp.sram, sram_budget),
                              (flash_rule, fp.flash, flash_budget)):
        if budget is not None and fig.bytes is not None and fig.bytes > budget:
            ev = {"need": fmt_size(fig.bytes), "need_bytes": fig.bytes, "method": fig.method,
                  "budget": fmt_size(budget), "budget_bytes": budget, "board": on_board}
            findings.append(Finding(rule.id, rule.severity, rule.category, rule.message(ev),
                                    evidence=ev))
    nodes = [n for _, n in lowered.graph.walk()]
    bad = {f.op for f in findings if f.category in ("unsupported-op", "lowering")}
    supported = sum(1 for n in nodes if n.dialect != "onnx" and op_key(n) not in bad)
    return ModelReport(model, backend, summary, fp, findings, board, sram_budget, flash_budget,
                       len(nodes), supported)


# ---------------------------------------------------------------------------------------------
# the gate


def load_baseline(path: str) -> dict:
    from tinyir.errors import InputError

    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: baseline report not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a tinyir JSON report ({e})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_ID:
        raise InputError(f"{path}: not a tinyir check report (schema {SCHEMA_ID})")
    return {(m["model"], m["backend"]): m for m in doc.get("models", [])}


def apply_baseline(report: ModelReport, baseline: dict, path: str, tolerance: float) -> None:
    """Fill ``report.gate``: growth beyond ``tolerance`` (fraction) and new findings."""
    report.baseline = path
    old = baseline.get((report.model, report.backend))
    if old is None:
        ev = {"rule": "(model not in baseline)", "where": report.model}
        report.gate.append(Finding(GATE_NEW.id, ERROR, GATE_NEW.category, GATE_NEW.message(ev),
                                   evidence=ev))
        return
    for what, new_fig, key in (("SRAM", report.footprint.sram, "sram"),
                               ("flash", report.footprint.flash, "flash")):
        old_bytes = (old.get("figures", {}).get(key) or {}).get("bytes")
        if new_fig.bytes is None or not old_bytes:
            continue
        if new_fig.bytes > old_bytes * (1 + tolerance):
            ev = {"what": what, "old": fmt_size(old_bytes), "new": fmt_size(new_fig.bytes),
                  "pct": 100 * (new_fig.bytes / old_bytes - 1), "tol": 100 * tolerance,
                  "old_bytes": old_bytes, "new_bytes": new_fig.bytes}
            report.gate.append(Finding(GATE_GROWTH.id, ERROR, GATE_GROWTH.category,
                                       GATE_GROWTH.message(ev), evidence=ev))
    known = {(f["rule"], f.get("node")) for f in old.get("findings", [])}
    for f in report.findings:
        if f.category == BUDGET:
            continue  # budgets are judged afresh, not grandfathered
        if (f.rule, f.node) not in known:
            ev = {"rule": f.rule, "where": f.node or report.model}
            report.gate.append(Finding(GATE_NEW.id, ERROR, GATE_NEW.category,
                                       GATE_NEW.message(ev), node=f.node, op=f.op, evidence=ev))


# ---------------------------------------------------------------------------------------------
# renderers


def to_json_doc(reports: list[ModelReport]) -> dict:
    return {"schema": SCHEMA_ID, "tinyir_version": __version__,
            "passed": all(r.passed for r in reports),
            "models": [r.to_json() for r in reports]}


def to_sarif(reports: list[ModelReport]) -> dict:
    """SARIF 2.1.0: one run, one result per finding (gate findings included)."""
    rules: dict[str, dict] = {}
    results = []
    for r in reports:
        table = load_table(r.backend)
        templates = {x.id: x.template for x in table.rules}
        for f in r.findings + r.gate:
            rules.setdefault(f.rule, {
                "id": f.rule, "name": f.rule.replace(".", "-"),
                "shortDescription": {"text": f.rule},
                "fullDescription": {"text": templates.get(f.rule, f.message)},
                "defaultConfiguration": {"level": _level(f.severity)},
                "properties": {"category": f.category, "backend": r.backend}})
            loc = {"physicalLocation": {"artifactLocation": {"uri": _uri(r.model)}}}
            if f.node:
                loc["logicalLocations"] = [{"name": f.node, "kind": "member",
                                            "fullyQualifiedName": f"{r.model}::{f.node}"}]
            results.append({"ruleId": f.rule, "level": _level(f.severity),
                            "message": {"text": f.message}, "locations": [loc],
                            "properties": {"op": f.op, "evidence": f.to_json()["evidence"],
                                           "backend": r.backend}})
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "tinyir", "version": __version__,
                                      "rules": list(rules.values())}},
                  "results": results}],
    }


def _level(severity: str) -> str:
    return {"error": "error", "warning": "warning"}.get(severity, "note")


def _uri(path: str) -> str:
    return Path(path).as_posix()
