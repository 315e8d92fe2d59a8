#!/usr/bin/env python3
"""Screenshot an HTML page (e.g. a verify report) with headless Chromium (Debian `chromium`).

    python scripts/render_report.py out/release.verify/report/report.html report.png [--size 1280,2000]

Chromium runs offline with a throw-away profile: no sandbox (containers run as root), no GPU,
no background networking, updates, sync or first-run pages.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError("no Chromium found: install it with `apt-get install -y chromium` (Debian)")


def screenshot(html: str | Path, png: str | Path, size: tuple[int, int] = (1280, 2000), timeout: float = 180) -> Path:
    """Render `html` to `png` at the given window size; raise with Chromium's output on failure."""
    html, png = Path(html).resolve(), Path(png).resolve()
    if not html.exists():
        raise FileNotFoundError(f"{html}: no such file")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", html.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium failed (exit {proc.returncode}) rendering {html}:\n{proc.stderr[-2000:]}")
    return png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html")
    ap.add_argument("png")
    ap.add_argument("--size", default="1280,2000", help="window WIDTH,HEIGHT (default 1280,2000)")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split(","))
    try:
        print(screenshot(args.html, args.png, (w, h)))
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
