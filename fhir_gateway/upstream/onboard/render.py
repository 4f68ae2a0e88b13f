"""The report three ways: a coloured terminal table, JSON (for scripts), and a self-contained HTML page
(inline CSS, no scripts, every value escaped: vendor texts are untrusted)."""
from __future__ import annotations

import html
import json
import shutil
import textwrap

import click

from fhir_gateway.upstream.onboard.report import Report

COLOURS = {"pass": "green", "warn": "yellow", "fail": "red"}
LABELS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, default=str)


def to_terminal(report: Report, colour: bool = True) -> str:
    width = max(80, min(160, shutil.get_terminal_size((120, 24)).columns))
    name_w = max([len(c.name) for c in report.checks] + [10])
    name_w = min(name_w, 28)
    area_w = 11
    text_w = max(30, width - name_w - area_w - 10)

    def style(text: str, status: str) -> str:
        return click.style(text, fg=COLOURS[status], bold=True) if colour else text

    head = f"telehub onboard: {report.vendor} at {report.base_url} (tenant {report.tenant}, {report.mode})"
    lines = [click.style(head, bold=True) if colour else head, ""]
    lines.append(f"{'STATUS':6}  {'AREA':{area_w}} {'CHECK':{name_w}} RESULT / NEXT STEP")
    lines.append("-" * min(width, 6 + 2 + area_w + 1 + name_w + 1 + text_w))
    for check in report.checks:
        body = textwrap.wrap(check.reason, text_w) or [""]
        if check.next_step:
            body += textwrap.wrap("→ " + check.next_step, text_w, subsequent_indent="  ")
        pad = " " * (6 + 2 + area_w + 1 + name_w + 1)
        lines.append(f"{style(LABELS[check.status], check.status)}    {check.area:{area_w}} "
                     f"{check.name[:name_w]:{name_w}} {body[0]}")
        lines.extend(pad + extra for extra in body[1:])
    counts = report.counts()
    lines.append("")
    summary = f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail — overall {report.status.upper()}"
    lines.append(style(summary, report.status))
    latency = report.latency_summary()
    if latency:
        lines.append(f"{report.calls} upstream calls; latency p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms; "
                     f"page sizes {min(report.page_sizes, default=0)}-{max(report.page_sizes, default=0)}")
    if report.connection_file:
        lines.append(f"connection file: {report.connection_file}")
    return "\n".join(lines)


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.4em .6em;text-align:left;vertical-align:top}th{background:#f4f4f4}
.pass{color:#1a7f37;font-weight:bold}.warn{color:#9a6700;font-weight:bold}.fail{color:#cf222e;font-weight:bold}
.next{color:#444;font-style:italic}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}"""


def to_html(report: Report) -> str:
    e = html.escape
    counts = report.counts()
    rows = []
    for check in report.checks:
        nxt = f'<div class="next">Next step: {e(check.next_step)}</div>' if check.next_step else ""
        rows.append(f'<tr><td class="{e(check.status)}">{e(LABELS[check.status])}</td><td>{e(check.area)}</td>'
                    f"<td>{e(check.name)}</td><td>{e(check.reason)}{nxt}</td></tr>")
    latency = report.latency_summary()
    facts = {"Vendor profile": report.vendor, "Base URL": report.base_url, "Tenant": report.tenant,
             "Mode": report.mode, "Started": report.started_at, "Upstream calls": str(report.calls),
             "Latency": (f"p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms, max {latency['max_ms']} ms"
                         if latency else "-"),
             "Server": " ".join(f"{k} {v}" for k, v in report.server.items()) or "-",
             "Connection file": report.connection_file or "not written"}
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts.items())
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Onboarding report: '
            f"{e(report.vendor)}</title><style>{CSS}</style></head><body>"
            f"<h1>Onboarding report: {e(report.vendor)}</h1>"
            f'<p class="{e(report.status)}">{counts["pass"]} pass, {counts["warn"]} warn, {counts["fail"]} fail '
            f"— overall {e(report.status.upper())}</p><dl>{dl}</dl>"
            f"<table><thead><tr><th>Status</th><th>Area</th><th>Check</th><th>Result and next step</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></body></html>\n")
