"""The report's HTML in a real browser: headless Chromium driven over the DevTools protocol.

Opens ``report.html`` of the small demo report (built once per session by
tests/test_notebooks.py) from ``file://`` and checks that it renders, that every image loads,
that the console stays free of errors and that no request goes anywhere but the file itself and
its data: URIs. Chromium is also told to resolve no host name at all, so nothing can leave the
machine even if a check were wrong. A full-page screenshot is kept in
``reports/test-artifacts/`` (git-ignored).

Needs the Debian ``chromium`` package; skipped when it is absent (a failure under CI=true).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import skip_or_fail
from test_notebooks import demo_report
from test_security import EVIL_ID, EVIL_SEGMENT, FORMULA_SEGMENT, hostile_report

try:
    import websocket
except ImportError:  # pragma: no cover - depends on the environment
    skip_or_fail(
        "websocket-client is needed for CDP (pip install -e '.[dev]')", allow_module_level=True
    )
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.requires(
        CHROMIUM is not None, reason="chromium not installed (apt-get install chromium)"
    ),
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-port=0",
]


class Page:
    """A tiny Chrome DevTools protocol client for one page."""

    def __init__(self, url: str):
        self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        wanted = self.next_id
        self.socket.send(json.dumps({"id": wanted, "method": method, "params": params}))
        self.socket.settimeout(120)  # drain() leaves a short timeout; a long screenshot is slow
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.record(message)

    def record(self, message: dict) -> None:
        """Keep an event; a JavaScript dialog (a script ran!) is kept and dismissed at once,
        so a page that opens one still loads and the tests can say what happened."""
        self.events.append(message)
        if message.get("method") == "Page.javascriptDialogOpening":
            self.next_id += 1
            self.socket.send(
                json.dumps(
                    {
                        "id": self.next_id,
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": True},
                    }
                )
            )

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            self.record(json.loads(self.socket.recv()))

    def drain(self, seconds: float) -> None:
        """Collect events for a while (late requests, module imports, console messages)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.socket.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.record(json.loads(self.socket.recv()))
            except websocket.WebSocketTimeoutException:
                break

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium; yields the DevTools HTTP endpoint (http://127.0.0.1:PORT)."""
    profile = tempfile.mkdtemp(prefix="satmodel-chromium-")
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = None
        deadline = time.monotonic() + 60
        while endpoint is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            match = re.search(r"DevTools listening on ws://([\d.]+:\d+)/", line)
            if match:
                endpoint = f"http://{match.group(1)}"
        if endpoint is None:
            pytest.fail("chromium did not start its DevTools endpoint")
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def new_page(endpoint: str) -> Page:
    """A blank tab with the Page, Network, Runtime and Log events switched on."""
    from urllib.request import Request, urlopen

    with urlopen(Request(f"{endpoint}/json/new?about:blank", method="PUT"), timeout=30) as reply:
        target = json.loads(reply.read())
    page = Page(target["webSocketDebuggerUrl"])
    for domain in ("Page", "Network", "Runtime", "Log"):
        page.send(f"{domain}.enable")
    return page


def open_page(endpoint: str, url: str) -> Page:
    page = new_page(endpoint)
    page.send(
        "Emulation.setDeviceMetricsOverride",
        width=1200,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    page.send("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired")
    page.drain(1.5)
    return page


def test_report_html_renders_offline_in_chromium(browser, tmp_path_factory):
    folder = demo_report(tmp_path_factory)
    html = folder / "report.html"
    url = html.resolve().as_uri()
    page = open_page(browser, url)
    try:
        # it renders: title, headings, tables, a page of real length
        assert page.evaluate("document.readyState") == "complete"
        assert page.evaluate("document.title") == f"Service and satisfaction report {folder.name}"
        text = page.evaluate("document.body.innerText")
        for heading in (
            "Headline: satisfaction and complaints",
            "Service levels and error budget",
            "Data quality",
            "What drives satisfaction and complaints",
        ):
            assert heading in text
        assert page.evaluate("document.querySelectorAll('table').length") >= 4
        assert page.evaluate("document.body.scrollHeight") > 2000

        # the first screen holds the executive summary and the contents, whose links all land
        first_screen = page.evaluate(
            "Array.from(document.querySelectorAll('h2, p, strong'))"
            ".filter(e => e.getBoundingClientRect().top < 1400).map(e => e.textContent).join(' ')"
        )
        assert "Executive summary" in first_screen and "Contents" in first_screen
        targets = page.evaluate(
            "Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
            ".filter(a => !a.classList.contains('anchor-link'))"
            ".map(a => [a.getAttribute('href').slice(1), "
            "!!document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)))])"
        )
        assert len(targets) >= 8 and all(found for _, found in targets), targets
        assert "This notebook is run" not in text and "papermill" not in text

        # every figure says what it shows
        alts = page.evaluate("Array.from(document.images).map(i => i.alt)")
        assert alts and all(a and "No description" not in a and a != "Chart" for a in alts), alts

        # every image loads (no broken <img>)
        images = page.evaluate(
            "Array.from(document.images).map(i => ({src: i.src.slice(0, 30), "
            "complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}))"
        )
        assert len(images) >= 3
        broken = [i for i in images if not i["complete"] or i["width"] == 0 or i["height"] == 0]
        assert broken == []

        # no console error, no uncaught exception
        errors = [
            e["params"]
            for e in page.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (
                e.get("method") == "Runtime.consoleAPICalled"
                and e["params"]["type"] in ("error", "assert")
            )
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]
        assert errors == []

        # no request leaves the machine: only the file itself and data: URIs
        requested = [
            e["params"]["request"]["url"]
            for e in page.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        assert url in requested
        elsewhere = [u for u in requested if not (u == url or u.startswith("data:"))]
        assert elsewhere == []
        failed = [e["params"] for e in page.events if e.get("method") == "Network.loadingFailed"]
        assert failed == []

        # keep a full-page screenshot as a test artifact
        height = int(page.evaluate("document.documentElement.scrollHeight"))
        page.send(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=min(height, 16000),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        data = base64.b64decode(shot["data"])
        assert data.startswith(b"\x89PNG") and len(data) > 50_000
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"report-{folder.name}.png").write_bytes(data)
    finally:
        page.close()


# What a manager must never read: model terms, model and family keys, diagnostic check ids,
# segment identifiers and panel column names (fixed in issue 13; a fall-back header such as
# "slo availability pct" is caught as well).
INTERNALS = [
    r"\bnp\.",
    r"\bC\(\w+\)",
    r"\[T\.",
    r"\bnegbin\b",
    r"\btop2\b",
    r"\bordinal\b",
    r"\blogit\b",
    r"\bmid_market\b",
    r"\bvif:",
    r"\bproportional_odds\b",
    r"\boverdispersion_lr\b",
    r"\bmin_level_count\b",
    r"\bn_obs\b",
    r"\b\w+_(pct|ms|minutes|median|k3)\b",
    r"\b(pct|ci low|ci high|rv q)\b",
]
# Column headers whose cells are counts: shown without decimals.
COUNT_HEADERS = {
    "Customers",
    "Responses",
    "Incidents",
    "Tickets",
    "Changes",
    "Failed changes",
    "Customers affected",
    "Over budget",
    "On track",
    "Will be over at this rate",
    "Rows read",
    "Rows quarantined",
    "Observations",
    "Complaints / month",
    "Complaints / month 95% low",
    "Complaints / month 95% high",
    "Complaints avoidable / month",
    "Expectations missed",
}


COUNT_ROWS = {"Survey responses", "Complaints", "Active users"}


def visible_internals(text: str) -> list[str]:
    """The internals (:data:`INTERNALS`) in a page's visible text, with some context."""
    return [
        text[max(m.start() - 40, 0) : m.end() + 40]
        for pattern in INTERNALS
        for m in re.finditer(pattern, text)
    ]


def test_internals_are_caught():
    """The check below does see each kind of internal it looks for."""
    for text in (
        "np.log1p(downtime_minutes)",
        "C(segment)[T.smb]",
        "negbin",
        "top2",
        "vif:x",
        "mid_market",
        "slo availability pct",
    ):
        assert visible_internals(text), text
    assert visible_internals("Mid-market customers: 3 of 12 (p95 latency, log)") == []


def test_report_speaks_a_managers_language(browser, tmp_path_factory):
    """No visible text of the report holds an internal name, and counts have no decimals."""
    folder = demo_report(tmp_path_factory)
    page = open_page(browser, (folder / "report.html").resolve().as_uri())
    try:
        text = page.evaluate("document.body.innerText")
        assert visible_internals(text) == []
        tables = page.evaluate(
            "Array.from(document.querySelectorAll('table')).map(t => ["
            "Array.from(t.querySelectorAll('thead th')).map(th => th.innerText.trim()),"
            "Array.from(t.querySelectorAll('tbody tr')).map(tr =>"
            " Array.from(tr.querySelectorAll('td')).map(td => td.innerText.trim()))])"
        )
        checked = 0
        for headers, rows in tables:
            # the headline table has one measure per row: its counts are whole in every column
            for row in rows:
                if row and row[0] in COUNT_ROWS:
                    checked += 1
                    assert all(re.fullmatch(r"-?[\d,]+|-", c) for c in row[2:]), row
            for i, header in enumerate(headers):
                if header not in COUNT_HEADERS:
                    continue
                cells = [row[i] for row in rows if i < len(row)]
                checked += len(cells)
                assert all(re.fullmatch(r"-?[\d,]+|-", c) for c in cells), (header, cells)
        assert checked > 0
    finally:
        page.close()


def test_a_page_with_a_cdn_script_is_caught(browser, tmp_path):
    """The checks above do see an outside request and a broken image when there is one."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bad</title>"
        '<script src="https://cdn.example.com/lib.js"></script></head>'
        '<body><img src="missing.png"></body></html>'
    )
    page = open_page(browser, bad.resolve().as_uri())
    try:
        requested = [
            e["params"]["request"]["url"]
            for e in page.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        assert "https://cdn.example.com/lib.js" in requested
        images = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert images == [0]
    finally:
        page.close()


def dialogs(page: Page) -> list[dict]:
    """alert/confirm/prompt dialogs the page opened (each one means a script ran)."""
    return [e["params"] for e in page.events if e.get("method") == "Page.javascriptDialogOpening"]


def test_hostile_names_render_as_text_and_run_nothing(browser, tmp_path_factory):
    """A segment named <script>alert(1)</script> and customer ids holding
    <img src=x onerror=alert(1)>: shown as text, no dialog, no script, no image request."""
    folder = hostile_report(tmp_path_factory)
    url = (folder / "report.html").resolve().as_uri()
    page = open_page(browser, url)
    try:
        page.drain(1.0)
        assert dialogs(page) == []
        text = page.evaluate("document.body.textContent")
        assert EVIL_SEGMENT in text
        assert EVIL_ID in text
        assert FORMULA_SEGMENT in text
        assert (
            page.evaluate("document.querySelectorAll('img[onerror], img[src=\\'x\\']').length") == 0
        )
        assert page.evaluate("document.querySelectorAll('script').length") == 0
        requested = [
            e["params"]["request"]["url"]
            for e in page.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        assert [u for u in requested if not (u == url or u.startswith("data:"))] == []
        # the at-risk table shows the ids in cells, as text
        cells = page.evaluate(
            "Array.from(document.querySelectorAll('td')).map(td => td.textContent)"
            ".filter(t => t.startsWith('<img'))"
        )
        assert cells and all(cell.startswith(EVIL_ID) for cell in cells)
    finally:
        page.close()


def test_an_unescaped_payload_is_caught(browser, tmp_path):
    """The dialog check above does see a script that runs: the same strings, unescaped."""
    bad = tmp_path / "xss.html"
    bad.write_text(f"<!DOCTYPE html><html><body><p>{EVIL_ID}</p></body></html>")
    page = new_page(browser)
    try:
        page.send("Page.navigate", url=bad.resolve().as_uri())
        page.wait_for("Page.javascriptDialogOpening")
        assert dialogs(page)[0]["message"] == "1"  # seen, and dismissed by Page.record
    finally:
        page.close()


def test_tables_fit_and_headers_wrap_by_words_in_print(browser, tmp_path_factory):
    """Printed on A4 (186 mm between the margins), no header is split inside a word (it was
    "Co mp on en t id") and the components table fits the page, as it does on screen without
    a scrollbar."""
    folder = demo_report(tmp_path_factory)
    page = open_page(browser, (folder / "report.html").resolve().as_uri())
    components = (
        "Array.from(document.querySelectorAll('table')).filter(t =>"
        " (t.caption ? t.caption.innerText : '').startsWith('Components by'))"
    )
    try:
        assert "Components by the satisfaction" in page.evaluate("document.body.innerText")
        scrolls = page.evaluate(
            f"{components}.map(t => t.closest('.jp-OutputArea-output'))"
            ".map(o => o.scrollWidth - o.clientWidth)"
        )
        assert scrolls and all(extra <= 1 for extra in scrolls), scrolls
        page.send("Emulation.setEmulatedMedia", media="print")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            width=round(186 / 25.4 * 96),
            height=1000,
            deviceScaleFactor=1,
            mobile=False,
        )
        page.drain(0.5)
        split = page.evaluate(
            "(() => { const c = document.createElement('canvas').getContext('2d'); const out = [];"
            " for (const th of document.querySelectorAll('table thead th')) {"
            "  const s = getComputedStyle(th); c.font = s.font;"
            "  const room = th.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);"
            "  for (const word of th.innerText.split(/[\\s\\-\\/]+/).filter(w => w))"
            "   if (c.measureText(word).width > room + 1) out.push(word + ' in ' + th.innerText);"
            " } return out; })()"
        )
        assert split == []
        overflow = page.evaluate(
            f"{components}.map(t => t.getBoundingClientRect().right"
            " - document.documentElement.clientWidth)"
        )
        assert overflow and all(extra <= 1 for extra in overflow), overflow
    finally:
        page.close()
