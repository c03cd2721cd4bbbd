"""Render an HTML page in headless Chromium (Debian's `chromium`, driven by Playwright) and
measure what a reader would see: horizontal overflow, images that failed to load, requests
that left the page.

Also a script, to refresh the committed screenshots of a leaderboard (results/transfer):
    python tests/browser.py results/transfer/leaderboard.html results/transfer
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

WIDTHS = {"desktop": 1400, "phone": 400}
HEIGHT = 900

# Elements whose box reaches past the viewport's sides, outside a scrolling box; the
# document's own scroll width; images not (yet) decoded.
MEASURE = """() => {
  const width = document.documentElement.clientWidth;
  const outside = [];
  for (const el of document.querySelectorAll('body *')) {
    const scroller = el.parentElement && el.parentElement.closest('.scroll');
    if (scroller) continue;
    const box = el.getBoundingClientRect();
    if (box.width && (box.right > width + 0.5 || box.left < -0.5)) {
      outside.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(box.right)}`);
    }
  }
  const images = [...document.images].map(i => ({
    alt: i.alt, loaded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width,
    // a plot's text as drawn: its size in points, scaled as the page scales the picture
    fontPx: i.parentElement.dataset.fontPt
      ? i.parentElement.dataset.fontPt * 4 / 3 * i.getBoundingClientRect().width / i.naturalWidth
      : null,
  }));
  // per table: is the Top-1 column's header within the window without scrolling?
  const top1 = [...document.querySelectorAll('th')].filter(th => th.textContent === 'Top-1 %')
    .map(th => { const box = th.getBoundingClientRect();
                 return {left: Math.round(box.left), right: Math.round(box.right)}; });
  return {width, scrollWidth: document.documentElement.scrollWidth, outside, images, top1};
}"""


def find_chromium() -> str | None:
    """Chromium's executable: $VIDBENCH_CHROMIUM, else `chromium` or `chromium-browser`."""
    named = os.environ.get("VIDBENCH_CHROMIUM")
    if named:
        return named
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(page_path: Path, screenshots: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per width name: MEASURE's result plus `requests` (every URL the page asked for
    other than itself and data: URLs; all are refused). Full-page screenshots go to
    `screenshots/leaderboard-{name}.png` when given."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium)")
    url = page_path.resolve().as_uri()
    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            for name, width in WIDTHS.items():
                page = browser.new_page(viewport={"width": width, "height": HEIGHT})
                requests: list[str] = []

                def refuse(route, request, requests=requests) -> None:
                    if request.url != url and not request.url.startswith("data:"):
                        requests.append(request.url)
                        route.abort()
                    else:
                        route.continue_()

                page.route("**/*", refuse)
                page.goto(url, wait_until="load")
                results[name] = {**page.evaluate(MEASURE), "requests": requests}
                if screenshots is not None:
                    screenshots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=screenshots / f"leaderboard-{name}.png", full_page=True)
                page.close()
        finally:
            browser.close()
    return results


if __name__ == "__main__":
    from PIL import Image  # matplotlib's dependency

    out = Path(sys.argv[2])
    for width, seen in render(Path(sys.argv[1]), out).items():
        print(width, {k: v for k, v in seen.items() if k != "images"})
        shot = out / f"leaderboard-{width}.png"  # 256 colours: a third of the bytes
        Image.open(shot).convert("RGB").quantize(256).save(shot, optimize=True)
