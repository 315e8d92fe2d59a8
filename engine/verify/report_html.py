"""The self-contained HTML report: summary, estimates, checks and every sampled item's picture.

Pictures are embedded as base64 data URIs, styles and the small script are inline, so the file
can be mailed or opened from anywhere with no network. Each item is an
`<article class="item" id="<item_id>" data-item-id=... data-stratum=...>` holding its picture
(`img.picture`), text and metadata, plus controls to mark it; "Download labels CSV" writes the
marks in the labels_template.csv format that `--labels FILE` reads back.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from html import escape

from engine.verify.labels import REASON_TEXT, REASONS, TEMPLATE_COLUMNS, Verdict
from engine.verify.render import DISTRACTOR_RGB, TARGET_RGB
from engine.verify.stats import Estimate, GateResult


@dataclass(frozen=True)
class ItemView:
    item_id: str
    order: int
    stratum: str
    instruction_id: str
    text: str
    tier: str
    subtype: str
    cardinality: str
    category: str
    image_id: str
    location: str            # "shard / sample key"
    checks: list[dict]
    picture: bytes
    picture_mime: str
    picture_file: str
    verdict: Verdict | None
    extra: str = ""          # e.g. the reject reason of a rejected candidate


def _rgb(c) -> str:
    return "rgb({},{},{})".format(*c)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f4f4f6;color:#1c1c22}
header{background:#1c1c22;color:#fff;padding:14px 24px}
header h1{font-size:20px;margin:0 0 4px}
header p{margin:2px 0;color:#c9c9d3}
main{padding:12px 24px}
section.summary{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.panel{background:#fff;border-radius:8px;padding:10px 14px;box-shadow:0 1px 2px #0002}
table{border-collapse:collapse;font-size:13px}
th,td{padding:3px 8px;text-align:right;border-bottom:1px solid #e6e6ea}
th:first-child,td:first-child{text-align:left}
tr.overall td{font-weight:600;border-top:2px solid #1c1c22}
.gate{padding:8px 14px;border-radius:8px;font-weight:600;margin:10px 0}
.gate.pass{background:#dff3e4;color:#14532d}.gate.fail{background:#fde2e1;color:#7f1d1d}
.swatch{display:inline-block;width:14px;height:14px;border-radius:3px;vertical-align:middle;margin:0 4px 0 10px}
.problems{color:#7f1d1d}
.items{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px;margin-top:14px}
article.item{background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002;overflow:hidden}
article.item img.picture{display:block;width:100%;height:auto;background:#222}
article.item .body{padding:8px 12px}
article.item blockquote{margin:4px 0 6px;font-size:16px;font-weight:600}
.tags span{display:inline-block;background:#ececf1;border-radius:10px;padding:0 8px;margin:0 4px 4px 0;font-size:12px}
.tags span.tier{background:#e0e7ff}.tags span.neg{background:#fde68a}
.meta{color:#666;font-size:12px;word-break:break-all}
.verdict.correct{color:#14532d;font-weight:600}.verdict.wrong{color:#7f1d1d;font-weight:600}
.mark{margin-top:6px;font-size:13px}
.mark select,.mark input[type=text]{font-size:12px}
button{font-size:13px;padding:4px 10px}
"""

SCRIPT = """
function labelsCsv(){
  const cols=%(cols)s;
  const q=v=>'"'+String(v).replace(/"/g,'""')+'"';
  const rows=[cols.join(',')];
  document.querySelectorAll('article.item').forEach(a=>{
    const c=a.querySelector('input[type=radio]:checked');
    const d=a.dataset;
    const rec={item_id:d.itemId,stratum:d.stratum,tier:d.tier,subtype:d.subtype,cardinality:d.cardinality,
      category:d.category,text:d.text,picture:d.picture,verdict:c?c.value:'',
      reason:a.querySelector('select').value,note:a.querySelector('input[type=text]').value};
    rows.push(cols.map(k=>q(rec[k]||'')).join(','));
  });
  const blob=new Blob([rows.join('\\n')+'\\n'],{type:'text/csv'});
  const link=document.createElement('a');
  link.href=URL.createObjectURL(blob);link.download='labels.csv';link.click();
}
"""


def _estimates_table(est: Estimate) -> str:
    rows = []
    for s in est.strata:
        ci = "–" if s.low is None else f"{s.low:.3f} – {s.high:.3f}"
        rows.append(f"<tr><td>{escape(s.stratum)}</td><td>{s.population}</td><td>{s.sampled}</td>"
                    f"<td>{s.judged}</td><td>{s.correct}</td><td>{_pct(s.precision)}</td><td>{ci}</td></tr>")
    ci = "–" if est.low is None else f"{est.low:.3f} – {est.high:.3f}"
    pop = sum(s.population for s in est.strata)
    rows.append(f"<tr class='overall'><td>overall (stratified)</td><td>{pop}</td>"
                f"<td>{sum(s.sampled for s in est.strata)}</td><td>{est.judged}</td>"
                f"<td>{sum(s.correct for s in est.strata)}</td><td>{_pct(est.precision)}</td><td>{ci}</td></tr>")
    head = ("<tr><th>stratum</th><th>population</th><th>sampled</th><th>judged</th><th>correct</th>"
            f"<th>precision</th><th>{est.confidence:.0%} Wilson CI</th></tr>")
    note = ""
    if est.missing_strata:
        n = len(est.missing_strata)
        note = (f"<p class='problems'>No verdicts yet in {n} {'stratum' if n == 1 else 'strata'}: "
                "overall precision undefined.</p>")
    elif est.n_eff is not None:
        n_eff = "∞ (census)" if est.n_eff == float("inf") else f"{est.n_eff:.1f}"
        note = (f"<p class='meta'>Overall: population-weighted mean of stratum precisions; Wilson interval at "
                f"effective n = {n_eff} (weights with finite population correction).</p>")
    return f"<table>{head}{''.join(rows)}</table>{note}"


def _reasons_table(reasons: dict[str, int]) -> str:
    if not reasons:
        return "<p class='meta'>No item judged wrong.</p>"
    body = "".join(f"<tr><td>{escape(REASON_TEXT.get(k, k))}</td><td>{v}</td></tr>"
                   for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"<table><tr><th>reason</th><th>items</th></tr>{body}</table>"


def _integrity(integrity) -> str:
    what = (f"{len(integrity.shards_checked)} shard(s), {integrity.samples_checked} sample(s), "
            f"{integrity.rows_checked} row(s)" + (" — full check" if integrity.full else " — sampled shards"))
    if integrity.ok:
        return f"<p>OK: {escape(what)}</p>"
    items = "".join(f"<li>{escape(p)}</li>" for p in integrity.problems[:200])
    more = f"<li>… {len(integrity.problems) - 200} more</li>" if len(integrity.problems) > 200 else ""
    return f"<p class='problems'>{len(integrity.problems)} problem(s) in {escape(what)}:</p><ul class='problems'>{items}{more}</ul>"


def _recheck(result) -> str:
    if result is None:
        return ""
    if not result.changes:
        body = f"<p>{result.rechecked} item(s) rechecked: every stored check result reproduces.</p>"
    else:
        rows = "".join(f"<tr><td><a href='#{escape(c.item_id)}'>{escape(c.item_id)}</a></td><td>{escape(c.checker)}</td>"
                       f"<td>{escape(c.stored)}</td><td>{escape(c.now)}</td><td>{escape(c.reason)}</td></tr>"
                       for c in result.changes)
        body = (f"<p class='problems'>{result.changed_items} of {result.rechecked} item(s) changed:</p>"
                f"<table><tr><th>item</th><th>checker</th><th>stored</th><th>now</th><th>reason</th></tr>{rows}</table>")
    if result.skipped:
        body += f"<p class='meta'>{len(result.skipped)} item(s) could not be rechecked.</p>"
    return f"<div class='panel'><h3>Recheck</h3>{body}</div>"


def _item(v: ItemView) -> str:
    data = base64.b64encode(v.picture).decode("ascii")
    neg = " neg" if v.cardinality == "negative" else ""
    checks = ", ".join(f"{c.get('checker')}: {c.get('verdict')}" for c in v.checks) or "–"
    verdict = ""
    if v.verdict is not None:
        why = f" ({REASON_TEXT.get(v.verdict.reason, v.verdict.reason)})" if v.verdict.reason else ""
        verdict = f"<p class='verdict {v.verdict.verdict}'>verdict: {v.verdict.verdict}{escape(why)}</p>"
    name = f"m-{v.item_id}"
    # the controls start from the stored verdict, so a downloaded CSV keeps it
    given, given_reason = (v.verdict.verdict, v.verdict.reason) if v.verdict is not None else ("", None)
    checked = {k: " checked" if given == k else "" for k in ("correct", "wrong")}
    options = "".join(f"<option value='{r}'{' selected' if r == given_reason else ''}>{escape(REASON_TEXT[r])}</option>"
                      for r in REASONS)
    note = escape(v.verdict.note) if v.verdict is not None else ""
    attrs = {"item-id": v.item_id, "instruction-id": v.instruction_id, "stratum": v.stratum, "tier": v.tier,
             "subtype": v.subtype, "cardinality": v.cardinality, "category": v.category, "text": v.text,
             "picture": v.picture_file}
    data_attrs = " ".join(f'data-{k}="{escape(str(val))}"' for k, val in attrs.items())
    extra = f"<p class='meta'>{escape(v.extra)}</p>" if v.extra else ""
    return f"""<article class="item" id="{escape(v.item_id)}" {data_attrs}>
<img class="picture" alt="{escape(v.text)}" src="data:{v.picture_mime};base64,{data}">
<div class="body">
<div class="meta">#{v.order} · {escape(v.item_id)}</div>
<blockquote>“{escape(v.text)}”</blockquote>
<div class="tags"><span class="tier">{escape(v.tier)}</span><span>{escape(v.subtype)}</span><span class="{neg.strip()}">{escape(v.cardinality)}</span><span>{escape(v.category)}</span></div>
<div class="meta">image {escape(v.image_id)} · {escape(v.location)}<br>checks: {escape(checks)}</div>
{extra}{verdict}
<div class="mark"><label><input type="radio" name="{escape(name)}" value="correct"{checked["correct"]}> correct</label>
<label><input type="radio" name="{escape(name)}" value="wrong"{checked["wrong"]}> wrong</label>
<select><option value="">reason…</option>{options}</select>
<input type="text" placeholder="note" value="{note}"></div>
</div></article>"""


def render_report(*, title: str, release_uri: str, release_id: str, spec_text: str, created: str,
                  items: list[ItemView], estimate: Estimate, reasons: dict[str, int], gate: GateResult | None,
                  integrity, recheck=None, notes: list[str] | None = None,
                  page: int = 1, pages: list[str] | None = None) -> str:
    """One report page; `pages` lists every page's file name (the summary repeats on each)."""
    gate_html = ""
    if gate is not None:
        cls = "pass" if gate.passed else "fail"
        gate_html = f"<div class='gate {cls}'>{escape(gate.message)}</div>"
    notes_html = "".join(f"<p class='meta'>{escape(n)}</p>" for n in notes or [])
    legend = (f"<p>Legend:<span class='swatch' style='background:{_rgb(TARGET_RGB)}'></span>target mask(s)"
              f"<span class='swatch' style='background:{_rgb(DISTRACTOR_RGB)}'></span>other instances of the "
              f"same category (outline) · negatives show the plain image</p>")
    script = SCRIPT % {"cols": json.dumps(list(TEMPLATE_COLUMNS))}
    nav = ""
    if pages and len(pages) > 1:
        links = " ".join(f"<b>{k}</b>" if k == page else f"<a href='{escape(name)}'>{k}</a>"
                         for k, name in enumerate(pages, 1))
        nav = f"<p class='nav'>page {page} of {len(pages)}: {links}</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}</style></head>
<body>
<header><h1>{escape(title)}</h1>
<p>release <code>{escape(release_id)}</code> at {escape(release_uri)}</p>
<p>{escape(spec_text)} · {len(items)} item(s) · {escape(created)}</p></header>
<main>
{gate_html}
<section class="summary">
<div class="panel"><h3>Precision</h3>{_estimates_table(estimate)}</div>
<div class="panel"><h3>Failure reasons</h3>{_reasons_table(reasons)}
<h3>Integrity</h3>{_integrity(integrity)}</div>
{_recheck(recheck)}
</section>
{notes_html}
{legend}
{nav}
<p><button onclick="labelsCsv()">Download labels CSV</button> <span class="meta">mark items below, then pass the file to <code>python -m engine.verify … --labels labels.csv</code></span></p>
<section class="items">
{''.join(_item(v) for v in items)}
</section>
{nav}
</main>
<script>{script}</script>
</body></html>
"""
