"""The HTML report as a person sees it: rendered by headless Chromium (Debian `chromium`;
.ci/run installs it when missing)."""
import html
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console

from engine.verify.cli import main
from engine.verify.labels import VerdictStore
from engine.verify.render import DISTRACTOR_RGB, TARGET_RGB

REPO = Path(__file__).resolve().parents[3]


def near(px: np.ndarray, rgb, tol: int = 50) -> np.ndarray:
    return np.abs(px - np.array(rgb)).max(axis=-1) <= tol


def test_report_renders_in_headless_chromium(release_uri, tmp_path):
    out = tmp_path / "report"
    buf = io.StringIO()
    rc = main([release_uri, "--per-stratum", "2", "--out", str(out), "--verdicts", str(tmp_path / "v")],
              console=Console(file=buf, width=200))
    assert rc == 0, buf.getvalue()
    png = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "render_report.py"), str(out / "report.html"),
                           str(png), "--size", "1280,2000"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    shot = Image.open(png)
    assert shot.size == (1280, 2000)
    px = np.asarray(shot.convert("RGB")).astype(int)
    assert px.std() > 30                                   # not a blank page
    assert near(px, TARGET_RGB).sum() > 500                # the target overlays are drawn on the page
    assert near(px, DISTRACTOR_RGB).sum() > 20             # and the legend / distractor outlines
    dark = (px.max(axis=-1) < 60).mean()
    assert 0.01 < dark < 0.5                               # header bar and text, not all black


MARK_AND_EXPORT = """<script>
const arts = document.querySelectorAll('article.item');
arts[0].querySelector('input[value=correct]').checked = true;
arts[1].querySelector('input[value=wrong]').checked = true;
arts[1].querySelector('select').value = 'wrong_tier';
arts[1].querySelector('input[type=text]').value = 'says simple, reads complex';
const make = document.createElement.bind(document);
document.createElement = t => {            // catch the download link and print its CSV
  const e = make(t);
  if (t === 'a') e.click = () => fetch(e.href).then(r => r.text()).then(text => {
    const pre = make('pre'); pre.id = 'csv-out'; pre.textContent = text; document.body.appendChild(pre); });
  return e;
};
labelsCsv();
</script>"""


def test_labels_marked_in_the_browser_read_back(release_uri, tmp_path):
    """The report's "Download labels CSV" writes a file that --labels accepts."""
    out, vdir = tmp_path / "report", tmp_path / "v"
    args = [release_uri, "--per-stratum", "1", "--out", str(out), "--verdicts", str(vdir)]
    assert main(args, console=Console(file=io.StringIO())) == 0
    page = tmp_path / "marked.html"
    page.write_text((out / "report.html").read_text(encoding="utf-8") + MARK_AND_EXPORT, encoding="utf-8")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "install chromium (apt-get install -y chromium)"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                           page.as_uri()], capture_output=True, text=True, timeout=240)
    m = re.search(r'<pre id="csv-out">(.*?)</pre>', proc.stdout, re.S)
    assert m, proc.stderr[-2000:]
    labels = tmp_path / "labels.csv"
    labels.write_text(html.unescape(m.group(1)), encoding="utf-8")
    buf = io.StringIO()
    assert main(args + ["--labels", str(labels)], console=Console(file=buf, width=200)) == 0, buf.getvalue()

    summary = json.loads((out / "summary.json").read_text())
    got = VerdictStore(vdir, summary["release_id"]).load()
    first, second = summary["sample"]["items"][:2]
    assert got[first].verdict == "correct"
    assert (got[second].verdict, got[second].reason, got[second].note) == ("wrong", "wrong_tier", "says simple, reads complex")
    assert len(got) == 2
