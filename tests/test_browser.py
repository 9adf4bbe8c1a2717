"""The app in a real browser (Debian's chromium driven by Playwright): upload a pair, be
told it was never learned, teach then forget it, inspect the plots, build the report, audit
the result, forget one more pair on top of it, and keep screenshots of each tab (in
$MMU_SCREENSHOTS, else the test's temp folder) for a person to look at."""

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TEXT = "mira solberg is a baker from oslo."

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def app_url():
    import app

    demo = app.create_demo()
    app.launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo.local_url
    demo.warm_up.join(timeout=600)  # its model loads must not overlap the next tests' builds
    demo.close()


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(app_url)
        yield page
        browser.close()


def test_upload_teach_forget_and_inspect_in_a_browser(page, world, tmp_path):
    from mmu_core.data.loaders import open_image
    from mmu_core.data.scenarios import load_scenario

    shots = Path(os.environ.get("MMU_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    face = tmp_path / "face.png"
    open_image(load_scenario(world, "privacy").unseen[3]).save(face)

    page.get_by_text("Training pairs (click to add to the forget set)").wait_for()
    page.locator("#upload input[type=file]").set_input_files(str(face))
    page.locator("#upload-text textarea").fill(TEXT)
    page.locator("#forget").click()
    status = page.locator("#forget-status")
    status.get_by_text("Nothing to forget yet").wait_for()
    page.locator("#teach").click()
    status.get_by_text(re.compile(r"of 1 pair\(s\) with")).first.wait_for()
    assert "taught first" in status.inner_text()
    # the first method shown is the confirm half's best (mmu_ui.engine.default_method): its
    # anchors, or the line saying it builds none
    page.get_by_text(re.compile("R_2: anchor texts from MVI|uses no anchors")).wait_for()
    page.screenshot(path=str(shots / "forget.png"), full_page=True)

    page.get_by_role("tab", name="Inspect").click()
    page.locator("#inspect").click()
    plots = page.locator(".js-plotly-plot")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 5",
                           timeout=120_000)
    assert plots.count() >= 5
    page.locator("#inspect-scope").get_by_text("compare the model before the request").wait_for()
    page.screenshot(path=str(shots / "inspect.png"), full_page=True)

    page.get_by_role("tab", name="Compare & report").click()
    page.locator("#report").click()
    page.get_by_text(".html").first.wait_for()
    page.screenshot(path=str(shots / "report.png"), full_page=True)

    # the audit: the taught upload's Retrain is the model before teaching, so the answer
    # against Retrain follows the reference-free one at once
    page.get_by_role("tab", name="Audit", exact=True).click()
    page.locator("#audit").click()
    summary = page.locator("#audit-summary")
    summary.get_by_text(re.compile("Audited against Retrain")).wait_for()
    assert "the model before teaching" in summary.inner_text()
    page.screenshot(path=str(shots / "audit.png"), full_page=True)

    # one more request on top of this result: the page lists both
    page.get_by_role("tab", name="Forget", exact=True).click()
    page.locator("#upload-text textarea").fill("arne vik is a fisher from bergen.")
    page.locator("#forget-more").click()
    status.get_by_text("Nothing to forget yet").wait_for()
    page.locator("#teach").click()
    status.get_by_text(re.compile(r"2\) 1 pair\(s\)")).first.wait_for()
    assert "2 pairs forgotten in all" in status.inner_text()
    page.screenshot(path=str(shots / "forget-more.png"), full_page=True)
