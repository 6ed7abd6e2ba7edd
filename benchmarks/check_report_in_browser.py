"""Render a bench ``report.html`` in headless Chromium and save a screenshot to look at.

    python benchmarks/check_report_in_browser.py runs/demo/report.html [--png shot.png]

A check for a person (or a reviewer) rather than a test: it needs a Chromium or Chrome binary
(``apt-get install chromium``), which CI does not have. It also parses the page and prints,
per table, its header and number of body rows, so that a table collapsed into one row shows
without opening the picture. Exit status: 0 when the screenshot was written, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class _Tables(HTMLParser):
    """Each ``<table>``: its header cells and the cell texts of its body rows."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self.images = 0
        self._section = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"header": [], "rows": []})
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr" and self.tables and self._section == "tbody":
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td") and self.tables:
            self._cell = []
        elif tag == "img":
            self.images += 1

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None and self.tables:
            text = "".join(self._cell).strip()
            if self._section == "thead":
                self.tables[-1]["header"].append(text)
            elif self.tables[-1]["rows"]:
                self.tables[-1]["rows"][-1].append(text)
            self._cell = None
        elif tag in ("thead", "tbody"):
            self._section = None


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(html: Path, png: Path, size: str = "1400,2000", timeout: int = 120) -> None:
    exe = browser()
    if exe is None:
        raise SystemExit(f"no Chromium / Chrome found (tried {', '.join(BROWSERS)}); "
                         "install one, e.g. apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={size}",
               f"--screenshot={png.resolve()}", html.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png.exists():
        raise SystemExit(f"{exe} wrote no screenshot (exit {done.returncode}):\n{done.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="a report.html written by fewshot-apps bench")
    parser.add_argument("--png", type=Path, help="where to save it (default: beside the report)")
    parser.add_argument("--window-size", default="1400,2000", help="width,height in pixels")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"error: {args.report}: no such file", file=sys.stderr)
        return 1
    tables = _Tables()
    tables.feed(args.report.read_text(encoding="utf-8"))
    for i, table in enumerate(tables.tables, 1):
        print(f"table {i}: {len(table['rows'])} body rows; header: {', '.join(table['header'])}")
    print(f"{tables.images} images")
    png = args.png or args.report.with_name(args.report.stem + "_screenshot.png")
    screenshot(args.report, png, args.window_size)
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
