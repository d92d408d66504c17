"""Headless Debian chromium for page tests: rendered DOM, screenshots, and a switch that cuts the network.

``offline=True`` sends every http(s) request except those to loopback addresses (the local
stack's servers) to a dead loopback proxy and fails every host name resolution, so a page that
loads anything from the network renders incompletely (plotly's divs stay empty).
"""

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = [
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def _run(args: list[str], url: str, offline: bool, budget_ms: int, timeout: float) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--virtual-time-budget={budget_ms}",
        *(OFFLINE if offline else []),
        *args,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def dump_dom(url: str, *, offline: bool = False, budget_ms: int = 15000, timeout: float = 120) -> str:
    """The DOM after the page's scripts ran (``--dump-dom``)."""
    proc = _run(["--dump-dom"], url, offline, budget_ms, timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def screenshot(
    url: str, path: Path, *, size=(1400, 2400), offline: bool = False, budget_ms: int = 15000, timeout: float = 120
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = _run([f"--window-size={size[0]},{size[1]}", f"--screenshot={path}"], url, offline, budget_ms, timeout)
    assert proc.returncode == 0 and path.exists(), proc.stderr[-2000:]
    return path


class Elements(HTMLParser):
    """Start tags of a DOM with their attributes, and the text inside every element with an id."""

    def __init__(self, dom: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_by_id: dict[str, list[str]] = {}
        self.all_text: list[str] = []  # every text node of the page, in order
        self._open: list[str] = []
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if a.get("id"):
            self._open.append(a["id"])
            self.text_by_id.setdefault(a["id"], [])

    def handle_data(self, data):
        self.all_text.append(data)
        for element_id in self._open:
            self.text_by_id[element_id].append(data)

    def handle_endtag(self, tag):
        # ids close with their element only approximately; enough for tables and sections
        if tag in ("table", "section", "div") and self._open:
            self._open.pop()

    def with_class(self, cls: str, tag: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.tags if cls in a.get("class", "").split() and (tag is None or t == tag)]

    def text(self, element_id: str) -> str:
        return " ".join(self.text_by_id.get(element_id, []))
