"""`python -m engine.verify RELEASE_URI`: sample, picture, judge, estimate, gate.

Exit codes: 0 done (and the gate, if any, passed); 2 bad input (not a release, unreadable
labels file, bad option); 3 the gate failed (precision lower bound below it, or no evidence);
4 integrity problems (a shard or sample does not match the release's own records).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from engine import storage
from engine.verify import render
from engine.verify.integrity import IntegrityReport, SampleData, check_release
from engine.verify.labels import (REASON_TEXT, LabelsError, VerdictStore, default_verdicts_dir,
                                  interactive, now, read_labels, write_template)
from engine.verify.report_html import ItemView, render_report
from engine.verify.sample import EXTRA_STRATA, Sample, SampleSpec, draw, item_id
from engine.verify.stats import Estimate, GateResult, estimate, gate

EXIT_OK, EXIT_INPUT, EXIT_GATE, EXIT_INTEGRITY = 0, 2, 3, 4
LOCATION_COLUMNS = ["image_id", "shard", "sample_key"]


def population(release, rejected: bool) -> pd.DataFrame:
    """The instructions to sample: the manifest, or the rejected candidates located (where
    their image has a sample at all) through the manifest rows of the same image."""
    manifest = release.manifest
    if not rejected:
        return manifest
    where = manifest[LOCATION_COLUMNS].drop_duplicates("image_id")
    return release.rejected.merge(where, on="image_id", how="left")


def stratum_counts(sample: Sample, verdicts: dict) -> dict[str, dict]:
    counts = {name: {**s, "judged": 0, "correct": 0} for name, s in sample.strata.items()}
    for r in sample.items.itertuples(index=False):
        v = verdicts.get(r.item_id)
        if v is not None:
            counts[r.stratum]["judged"] += 1
            counts[r.stratum]["correct"] += v.verdict == "correct"
    return counts


def failure_reasons(sample: Sample, verdicts: dict) -> dict[str, int]:
    c = Counter(verdicts[i].reason_or_unspecified for i in sample.items["item_id"]
                if i in verdicts and verdicts[i].verdict == "wrong")
    return dict(c)


# -- pictures -------------------------------------------------------------------------------

def draw_pictures(items: pd.DataFrame, samples: dict[tuple[str, str], SampleData], out: Path, fmt: str,
                  max_side: int) -> dict[str, tuple[bytes, str]]:
    """item_id -> (encoded picture, file path); every picture is also written to out/items/."""
    ext = "jpg" if fmt == "jpeg" else "png"
    (out / "items").mkdir(parents=True, exist_ok=True)
    pictures = {}
    for r in items.itertuples(index=False):
        s = samples.get((r.shard, r.sample_key)) if isinstance(r.shard, str) else None
        try:
            if s is None:
                img = render.placeholder("image not in this release: the image has no accepted instruction, "
                                         "so it has no sample" if not isinstance(r.shard, str) else
                                         f"sample {r.sample_key} could not be read from {r.shard}")
            elif s.meta is None or s.image is None:
                img = render.placeholder(f"sample {r.sample_key} of {r.shard} is damaged (see integrity)")
            else:
                img = render.item_picture(s.meta, s.image, list(r.target_ids), r.cardinality, max_side)
        except Exception as e:
            img = render.placeholder(f"cannot draw: {type(e).__name__}: {e}")
        data = render.encode(img, fmt)
        path = out / "items" / f"{r.item_id}.{ext}"
        path.write_bytes(data)
        pictures[r.item_id] = (data, str(path.resolve()))
    return pictures


def write_contact_sheets(items: pd.DataFrame, pictures: dict[str, tuple[bytes, str]], verdicts: dict,
                         out: Path) -> list[Path]:
    from io import BytesIO

    from PIL import Image

    for old in out.glob("contact_sheet_*.png"):
        old.unlink()
    entries = []
    for r in items.itertuples(index=False):
        v = verdicts.get(r.item_id)
        verdict = ""
        if v is not None:
            verdict = f" · {v.verdict}" + (f" ({REASON_TEXT.get(v.reason, v.reason)})" if v.reason else "")
        entries.append(render.SheetEntry(Image.open(BytesIO(pictures[r.item_id][0])),
                                         f"#{r.order} {r.stratum}", r.text,
                                         f"{r.item_id} · {r.subtype} · {r.category}{verdict}"))
    paths = []
    for k, sheet in enumerate(render.contact_sheets(entries), 1):
        p = out / f"contact_sheet_{k:03d}.png"
        sheet.save(p, compress_level=3)  # photos barely compress; favour speed
        paths.append(p)
    return paths


# -- printing -------------------------------------------------------------------------------

def print_estimate(console: Console, est: Estimate, reasons: dict[str, int]) -> None:
    t = RichTable(title=f"Precision ({est.confidence:.0%} Wilson intervals)", box=box.SIMPLE_HEAD)
    t.caption = "N = instructions in the stratum; low/high = interval bounds"
    t.add_column("stratum", overflow="fold")  # long --by strata wrap; the numbers keep their headers
    for col in ("N", "sampled", "judged", "correct", "precision", "low", "high"):
        t.add_column(col, justify="right", no_wrap=True, min_width=max(len(col), 5))
    f = lambda v: "–" if v is None else f"{v:.3f}"
    for s in est.strata:
        t.add_row(s.stratum, str(s.population), str(s.sampled), str(s.judged), str(s.correct),
                  f(s.precision), f(s.low), f(s.high))
    t.add_section()
    t.add_row("overall", str(sum(s.population for s in est.strata)),
              str(sum(s.sampled for s in est.strata)), str(est.judged), str(sum(s.correct for s in est.strata)),
              f(est.precision), f(est.low), f(est.high), style="bold")
    console.print(t)
    if est.judged == 0:
        console.print("no verdicts yet: judge the sample with --interactive, or fill labels_template.csv "
                      "and pass it with --labels FILE", highlight=False)
    elif est.missing_strata:
        n = len(est.missing_strata)
        console.print(f"overall precision is undefined until every stratum has a verdict: {n} "
                      f"{'stratum has' if n == 1 else 'strata have'} none yet ({', '.join(est.missing_strata)})",
                      highlight=False)
    if reasons:
        r = RichTable(title="Failure reasons", box=box.SIMPLE_HEAD)
        r.add_column("reason")
        r.add_column("items", justify="right")
        for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            r.add_row(REASON_TEXT.get(k, k), str(v))
        console.print(r)


def print_checks(console: Console, integrity: IntegrityReport, rechecked) -> None:
    scope = "full" if integrity.full else "sampled shards"
    if integrity.ok:
        console.print(f"integrity ({scope}): OK — {len(integrity.shards_checked)} shard(s), "
                      f"{integrity.samples_checked} sample(s), {integrity.rows_checked} row(s)")
    else:
        console.print(f"[bold red]integrity ({scope}): {len(integrity.problems)} problem(s)[/]")
        for p in integrity.problems[:30]:
            console.print(f"  {p}", markup=False, highlight=False)
        if len(integrity.problems) > 30:
            console.print(f"  … {len(integrity.problems) - 30} more (see summary.json)")
    if rechecked is not None:
        if not rechecked.changes:
            console.print(f"recheck: {rechecked.rechecked} item(s), every stored check result reproduces")
        else:
            t = RichTable(title=f"recheck: {rechecked.changed_items} of {rechecked.rechecked} item(s) changed")
            for col in ("item", "checker", "stored", "now", "reason"):
                t.add_column(col)
            for c in rechecked.changes[:50]:
                t.add_row(c.item_id, c.checker, c.stored, c.now, c.reason)
            console.print(t)


# -- main -----------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m engine.verify",
        description="QA a release: a stratified random sample with pictures, human verdicts, "
                    "precision estimates with Wilson intervals, integrity checks and a release gate.",
        epilog="exit codes: 0 ok, 2 bad input, 3 gate failed (or no evidence), 4 integrity problems")
    ap.add_argument("release", help="release folder or s3:// prefix (must hold _RELEASE.json)")
    ap.add_argument("--out", help="report folder (default: <verdicts dir>/report)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--ci-width", type=float, default=None,
                      help="target full width of each stratum's interval at p=0.5 (default 0.1)")
    size.add_argument("--per-stratum", type=int, default=None, help="a fixed sample size per stratum")
    ap.add_argument("--by", action="append", choices=EXTRA_STRATA, default=[],
                    help="extra stratum dimension (repeatable)")
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--rejected", action="store_true", help="sample the rejected candidates instead")
    ap.add_argument("--interactive", action="store_true", help="judge items in the terminal (resumable)")
    ap.add_argument("--labels", action="append", default=[], metavar="FILE",
                    help="read verdicts from a filled labels_template.csv (or JSONL); repeatable")
    ap.add_argument("--verdicts", help="verdicts folder (default: <release>.verify/ beside a local release)")
    ap.add_argument("--gate", type=float, default=None,
                    help="exit 3 unless the overall precision's lower bound is at least this")
    ap.add_argument("--gate-each", action="store_true", help="with --gate: every stratum's lower bound too")
    ap.add_argument("--recheck", action="store_true", help="re-run the configured checkers on the sample")
    ap.add_argument("--config", help="engine config YAML for --recheck (default: embedded defaults)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--integrity", action="store_true",
                    help="check every shard, sample and manifest row (default: the sampled shards only)")
    ap.add_argument("--format", choices=("jpeg", "png"), default="jpeg", help="picture format")
    ap.add_argument("--max-side", type=int, default=render.MAX_SIDE, help="picture size (longer side, px)")
    ap.add_argument("--page-size", type=int, default=200,
                    help="items per HTML page (report.html, report_002.html, ...; default 200)")
    return ap


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    args = parser().parse_args(argv)
    if console is None:  # off a terminal (CI logs, pipes) rich would assume 80 columns
        console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    try:
        return run(args, console)
    except (LabelsError, ValueError, FileNotFoundError) as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        return EXIT_INPUT


def run(args, console: Console) -> int:
    from engine.release.publish import ReleaseError, open_release

    if args.gate is not None and args.rejected:
        raise ValueError("--gate applies to accepted instructions; drop --rejected")
    if args.page_size < 1 or args.max_side < 16:
        raise ValueError("--page-size must be >= 1 and --max-side >= 16")
    if args.gate is not None and not 0 < args.gate <= 1:
        raise ValueError(f"--gate must lie in (0, 1], got {args.gate}")
    try:
        release = open_release(args.release)
    except ReleaseError as e:
        raise ValueError(str(e)) from None
    spec = SampleSpec(seed=args.seed, ci_width=None if args.per_stratum else (args.ci_width or 0.1),
                      per_stratum=args.per_stratum, by=tuple(dict.fromkeys(args.by)),
                      confidence=args.confidence, rejected=args.rejected)
    vdir = Path(args.verdicts) if args.verdicts else default_verdicts_dir(release.uri)
    out = Path(args.out) if args.out else vdir / "report"
    if not storage.is_s3(release.uri):  # a release is immutable: nothing of ours goes inside it
        root = Path(release.uri).resolve()
        for what, p in (("--verdicts", vdir), ("--out", out)):
            if p.resolve().is_relative_to(root):
                raise ValueError(f"{what} {p} lies inside the release {release.uri}; releases are immutable")
    store = VerdictStore(vdir, release.release_id)

    pop = population(release, args.rejected)
    sample = draw(pop, release.release_id, spec)
    if sample.population_size == 0:
        console.print(f"nothing to sample: release {release.release_id} has no "
                      f"{'rejected candidates' if args.rejected else 'accepted instructions'}", highlight=False)
    console.print(f"release {release.release_id} ({release.uri}): {sample.population_size} "
                  f"{'rejected candidates' if args.rejected else 'instructions'} in {len(sample.strata)} strata; "
                  f"sample of {len(sample)} ({spec.describe()})", highlight=False)

    if args.labels:
        ids = pd.concat([release.manifest["instruction_id"], release.rejected["instruction_id"]])
        known = {item_id(release.release_id, i): i for i in ids}
        for f in args.labels:
            added = store.add(read_labels(f, known, release.release_id))
            console.print(f"{f}: {added} verdict(s) recorded in {store.path}", highlight=False)

    integrity, samples = check_release(release, sample.items, release.manifest, full=args.integrity,
                                       accepted=not args.rejected)
    pictures = draw_pictures(sample.items, samples, out, args.format, args.max_side)
    if args.interactive:
        res = interactive(sample.items, {k: v[1] for k, v in pictures.items()}, store)
        console.print(f"interactive: {res['answered']} answered, {res['skipped']} skipped, "
                      f"{res['already']} already judged" + (" (stopped; run again to resume)" if res["quit"] else ""))

    rechecked = None
    if args.recheck:
        from engine.config import load_config
        from engine.verify.recheck import recheck

        rechecked = recheck(sample.items, samples, load_config(args.config, args.overrides),
                            accepted=not args.rejected)

    verdicts = store.load()
    est = estimate(stratum_counts(sample, verdicts), args.confidence)
    reasons = failure_reasons(sample, verdicts)
    outside = len(set(verdicts) - set(sample.items["item_id"]))
    notes = []
    if outside:
        notes.append(f"{outside} stored verdict(s) are for items outside this sample (another --seed, "
                     "--ci-width, --per-stratum or --by?) and are not counted.")
    if args.rejected:
        notes.append("Rejected candidates: 'precision' is the share of rejected candidates a person judged "
                     "correct, i.e. what the checks threw away wrongly.")
    gate_result = gate(est, args.gate, args.gate_each) if args.gate is not None else None

    print_estimate(console, est, reasons)
    print_checks(console, integrity, rechecked)
    for n in notes:
        console.print(n, highlight=False)

    files = write_outputs(out, release, sample, spec, pictures, verdicts, est, reasons, gate_result,
                          integrity, rechecked, notes, args.format, args.page_size)
    console.print(f"report: {files['report']}\nlabels template: {files['template']}\n"
                  f"verdicts: {store.path}", highlight=False)
    if gate_result is not None:
        style = "bold green" if gate_result.passed else "bold red"
        console.print(f"[{style}]{gate_result.message}[/]", highlight=False)
    if not integrity.ok:
        return EXIT_INTEGRITY
    if gate_result is not None and not gate_result.passed:
        return EXIT_GATE
    return EXIT_OK


def write_outputs(out: Path, release, sample: Sample, spec: SampleSpec, pictures, verdicts, est: Estimate,
                  reasons, gate_result: GateResult | None, integrity: IntegrityReport, rechecked, notes,
                  fmt: str, page_size: int) -> dict[str, Path]:
    """report.html (+ report_NNN.html pages), labels_template.csv, contact sheets, summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    created = now()
    views = []
    for r in sample.items.itertuples(index=False):
        try:
            checks = json.loads(r.checks or "[]")
        except ValueError:
            checks = []
        loc = f"{r.shard} / {r.sample_key}" if isinstance(r.shard, str) else "no sample in this release"
        extra = f"rejected: {r.reject_reason}" if spec.rejected else ""
        views.append(ItemView(r.item_id, r.order, r.stratum, r.instruction_id, r.text, r.tier, r.subtype,
                              r.cardinality, r.category, r.image_id, loc, checks, pictures[r.item_id][0],
                              "image/jpeg" if fmt == "jpeg" else "image/png",
                              str(Path(pictures[r.item_id][1]).relative_to(out.resolve())),
                              verdicts.get(r.item_id), extra))
    for old in out.glob("report*.html"):
        old.unlink()
    chunks = [views[i:i + page_size] for i in range(0, len(views), page_size)] or [[]]
    names = ["report.html"] + [f"report_{k:03d}.html" for k in range(2, len(chunks) + 1)]
    for k, (name, chunk) in enumerate(zip(names, chunks), 1):
        html = render_report(title="Verification report" + (" (rejected candidates)" if spec.rejected else ""),
                             release_uri=release.uri, release_id=release.release_id, spec_text=spec.describe(),
                             created=created, items=chunk, estimate=est, reasons=reasons, gate=gate_result,
                             integrity=integrity, recheck=rechecked, notes=notes, page=k, pages=names)
        (out / name).write_text(html, encoding="utf-8")
    report = out / "report.html"
    template = out / "labels_template.csv"
    write_template(template, sample.items,
                   {k: str(Path(v[1]).relative_to(out.resolve())) for k, v in pictures.items()}, verdicts)
    sheets = write_contact_sheets(sample.items, pictures, verdicts, out)
    summary = {
        "release_id": release.release_id, "release_uri": release.uri, "created": created,
        "sample": {**asdict(spec), "size": len(sample), "population": sample.population_size,
                   "items": sample.items["item_id"].tolist()},
        "estimate": {"precision": est.precision, "low": est.low, "high": est.high, "judged": est.judged,
                     "n_eff": None if est.n_eff is None or est.n_eff == float("inf") else est.n_eff,
                     "confidence": est.confidence, "missing_strata": est.missing_strata,
                     "strata": [asdict(s) for s in est.strata]},
        "failure_reasons": reasons,
        "gate": None if gate_result is None else asdict(gate_result),
        "integrity": integrity.to_json(),
        "recheck": None if rechecked is None else rechecked.to_json(),
        "notes": notes,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    return {"report": report, "pages": [out / n for n in names], "template": template, "sheets": sheets}
