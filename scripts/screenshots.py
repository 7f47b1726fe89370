"""Look at the built site as a reader would: a screenshot of every page at 1280 x 2600 and the places that scroll
sideways.

Opens `_build/html` in headless Chromium (Debian's `chromium`, driven by the `playwright` package: `pip install
playwright`, no browser download needed), takes `_build/screenshots/<page>.png` (the top 2600 pixels of each page at
a 1280-pixel window) and reports, per page, every element wider than its box (a table or code block with a horizontal
scroll bar) and whether a finding comes before the first code cell. Exit status 1 when a page scrolls sideways.

    python scripts/screenshots.py [--pages 02_cktat,99_scorecard] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import glob
import http.server
import os
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(ROOT, "_build", "html")
OUT = os.path.join(ROOT, "_build", "screenshots")

# Elements whose content is wider than their box, inside the page's main column (the sidebars are left out).
OVERFLOW_JS = """() => {
  const main = document.querySelector('main') || document.body;
  const out = [];
  for (const el of main.querySelectorAll('table, pre, .cell_output, .output, .highlight, .table-wrapper, .pst-scrollable-table-container, div')) {
    const style = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(style.overflowX)) continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      out.push({tag: el.tagName, cls: el.className, text: (el.innerText || '').slice(0, 80),
                over: el.scrollWidth - el.clientWidth});
    }
  }
  const page = document.documentElement.scrollWidth > document.documentElement.clientWidth + 1;
  const firstCode = document.querySelector('main .cell_input:not(.tag_hide-input) , main details .cell_input');
  const finding = Array.from(main.querySelectorAll('strong')).find(s => /^What this (chapter|page) finds/.test(s.innerText)
                                                                       || s.innerText.includes('claims tested'));
  let findingFirst = null;
  if (finding) {
    const visible = Array.from(main.querySelectorAll('.cell_input')).find(c => !c.closest('details') && c.offsetHeight > 0);
    findingFirst = !visible || !!(finding.compareDocumentPosition(visible) & Node.DOCUMENT_POSITION_FOLLOWING);
  }
  return {elements: out, page, findingFirst};
}"""


def serve(folder: str) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=folder, **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", default="", help="comma-separated page names (default: every chapter and page)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    pages = sorted(glob.glob(os.path.join(SITE, "book", "**", "*.html"), recursive=True))
    pages += sorted(glob.glob(os.path.join(SITE, "examples", "**", "*.html"), recursive=True))
    wanted = [p for p in args.pages.split(",") if p]
    if wanted:
        pages = [p for p in pages if any(os.path.basename(p).startswith(w) for w in wanted)]
    os.makedirs(OUT, exist_ok=True)
    server, port = serve(SITE)
    bad = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 2600})
        for path in pages:
            rel = os.path.relpath(path, SITE)
            page.goto(f"http://127.0.0.1:{port}/{rel}", wait_until="load")
            page.wait_for_timeout(500)
            name = os.path.splitext(os.path.basename(path))[0]
            page.screenshot(path=os.path.join(OUT, f"{name}.png"))
            found = page.evaluate(OVERFLOW_JS)
            scrolls = found["elements"] or found["page"]
            bad += bool(scrolls)
            order = {True: "finding first", False: "CODE BEFORE THE FINDING", None: "no finding"}[found["findingFirst"]]
            print(f"{rel}: {'SCROLLS SIDEWAYS' if scrolls else 'fits'}; {order}")
            for el in found["elements"]:
                print(f"    {el['tag']}.{el['cls'][:40]} {el['over']} px too wide: {el['text']!r}")
        browser.close()
    server.shutdown()
    print(f"screenshots in {os.path.relpath(OUT, ROOT)}; {bad} page(s) scroll sideways")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
