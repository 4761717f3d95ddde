"""The oversight pages in a real headless browser, served by a real uvicorn.

Debian's chromium (``apt-get install chromium``, done by ``.ci/run``) driven by Playwright's Python
package; Playwright's own browser download is never used. Screenshots of each page are written to
``BORDERRISK_SCREENSHOTS`` (default: the test's temporary folder) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from models.scoring import Scorer
from service.oversight.render import CHROMIUM_ARGS
from service.store import AuditStore, KeyStore, make_engine, migrate
from tests.conftest import TEST_SECRET, record_of
from tests.service.oversight_data import plant_history

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = list(CHROMIUM_ARGS)
ROOT = Path(__file__).resolve().parents[2]


def _require_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("browser tests need " + " and ".join(missing))
        pytest.skip("browser tests need " + " and ".join(missing))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(registered, passenger_trained, tmp_path_factory):
    """uvicorn on a free port, its decision log holding a biased passenger history."""
    _require_browser()
    from training.registry import resolve
    from training.synth import generate_passenger

    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'audit.db'}"
    engine = make_engine(url)
    migrate(engine)
    keys = {role: KeyStore(engine).create(f"browser-{role}", role) for role in ("officer", "auditor")}
    version = resolve(registered, "passenger").version
    scorer = Scorer(passenger_trained.result.bundle, red_share=0.05, yellow_share=0.1, version=version)
    history = generate_passenger(6_000, seed=21, days=90, targeting_bias="TR")
    plant_history(AuditStore(engine), scorer, history)
    engine.dispose()

    port = _free_port()
    env = {
        **os.environ,
        "BORDERRISK_DATA_DIR": str(registered.data_dir),
        "BORDERRISK_DATABASE_URL": url,
        "BORDERRISK_ENV": "test",
        "BORDERRISK_SESSION_SECRET": TEST_SECRET,
        "BORDERRISK_RANDOM_SHARE": "0",
    }
    log = (folder / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"uvicorn did not become ready:\n{(folder / 'uvicorn.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield {"base": base, "keys": keys, "folder": folder}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _shots(server) -> Path:
    folder = Path(os.environ.get("BORDERRISK_SCREENSHOTS", server["folder"]))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sign_in(page, server, target: str) -> None:
    """Open a page, get sent to the sign-in form, sign in with the auditor key, land on the page."""
    page.goto(server["base"] + target)
    assert "/oversight/login" in page.url
    page.fill("#api_key", server["keys"]["auditor"])
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def test_decision_page_shows_the_waterfall_and_the_top_reason(server, browser, passenger_trained):
    payload = record_of(passenger_trained.later.iloc[42])
    r = httpx.post(
        f"{server['base']}/v1/passenger/score",
        json=payload,
        headers={"Authorization": f"Bearer {server['keys']['officer']}"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    target = f"/oversight/decisions/{body['decision_id']}"
    _sign_in(page, server, target)
    assert page.url.endswith(target)
    chart = page.locator("svg[data-chart=waterfall]")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] > 600 and box["height"] > 300  # a real, readable chart
    assert chart.locator("rect").count() >= 10
    top = body["explanation"]["contributions"][0]
    first_reason = page.locator("#reasons li").first.inner_text()
    expected = top["reason"].removesuffix(" (raises risk)").removesuffix(" (lowers risk)")
    assert expected[1:] in first_reason
    assert top["label"] in chart.inner_html()
    assert "No officer has reviewed this decision yet." in page.locator("#review-status").inner_text()
    # the session cookie is out of reach of scripts
    cookie = next(c for c in context.cookies() if c["name"] == "borderrisk_oversight")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.screenshot(path=str(_shots(server) / "decision.png"), full_page=True)
    # the explanation for the person concerned, printed to PDF by the server
    pdf = page.request.get(server["base"] + target + "/explanation.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    page.goto(server["base"] + target + "/explanation.html")
    assert "Your rights" in page.content()
    page.screenshot(path=str(_shots(server) / "explanation.png"), full_page=True)
    # the model that decided: its card
    page.goto(server["base"] + target)
    page.click("text=passenger-risk v")
    assert page.locator("h1").inner_text().startswith("Model card: passenger-risk")
    assert page.locator("#proxy").is_visible() and "nationality" in page.locator("#proxy").inner_text()
    page.screenshot(path=str(_shots(server) / "model.png"), full_page=True)
    page.goto(server["base"] + "/oversight/decisions?domain=passenger&reviewed=no")
    assert page.locator(f"a[href='{target}']").count() == 1
    page.screenshot(path=str(_shots(server) / "decisions.png"))
    context.close()


def test_proportionality_page_shows_and_flags_the_planted_bias(server, browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    _sign_in(page, server, "/oversight/proportionality?domain=passenger&since=2024-01-01&until=2024-03-31")
    assert "6,000 decisions" in page.locator("p.lead").inner_text()
    flag = page.locator("li.flagged-group[data-attribute=nationality][data-group=TR]")
    assert flag.count() == 1, page.locator("#flags").inner_text()
    text = flag.inner_text()
    assert "selected more often than its risk justifies" in text
    chart = page.locator("svg[data-chart=selection-nationality]")
    assert chart.is_visible() and "TR" in chart.inner_html()
    row = page.locator("#table-nationality tr.flagged", has_text="TR").first
    assert "disproportionate" in row.inner_text()
    assert page.locator("svg[data-chart=score-drift]").is_visible()
    page.screenshot(path=str(_shots(server) / "proportionality.png"), full_page=True)
    context.close()


def test_officer_cannot_sign_in(server, browser):
    page = browser.new_page()
    page.goto(server["base"] + "/oversight/login")
    page.fill("#api_key", server["keys"]["officer"])
    with page.expect_response(lambda r: r.url.endswith("/oversight/login")) as response:
        page.click("button[type=submit]")
    assert response.value.status == 403
    assert "may not read them" in page.content()
    page.close()


def test_chromium_is_debians(server):
    assert shutil.which("chromium") == CHROMIUM or Path(CHROMIUM).exists()
