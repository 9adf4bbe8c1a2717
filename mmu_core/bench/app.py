"""Benchmark of the app as a visitor meets it (`python -m mmu_core bench app`): from
starting `python app.py` to the first interactive page, and forget requests of one pair
end to end through the app's own HTTP API (Gradio's `/gradio_api/call/<api_name>`, spoken
with urllib so the engine imports no gradio package). Many visitors at once, through
gradio_client: `mmu_ui/load_benchmark.py`."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def _browser_ready(url: str) -> float | None:
    """Seconds until a real browser shows the gallery (None without chromium)."""
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.locator("button[aria-label*='Thumbnail'], .thumbnail-item").first.wait_for(
            timeout=120_000)
        seconds = time.perf_counter() - start
        browser.close()
    return seconds


def call_api(url: str, api_name: str, data: list, timeout: float = 300.0,
             session: str | None = None) -> list:
    """One call of a Gradio endpoint over its REST API: POST the inputs, then read the
    server-sent events until the result (or the error) arrives. Calls with the same
    `session` share the visitor's state (their result), as one browser tab does."""
    base = f"{url.rstrip('/')}/gradio_api/call/{api_name}"
    body = {"data": data, **({"session_hash": session} if session else {})}
    req = urllib.request.Request(base, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        event_id = json.load(r)["event_id"]
    event = None
    with urllib.request.urlopen(f"{base}/{event_id}", timeout=timeout) as r:
        for raw in r:
            line = raw.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                if event == "error":
                    raise RuntimeError(f"{api_name} failed: {payload}")
                return json.loads(payload)
    raise RuntimeError(f"{api_name}: the stream ended without a result")


def app_benchmark(requests: int = 3, method: str = "ours") -> dict:
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.metrics.provenance import provenance

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(url + "config", proc)
        served = time.perf_counter() - start
        in_browser = _browser_ready(url)
        interactive = served + in_browser if in_browser is not None else None
        pairs = load_scenario(default_world(), "privacy").train
        times = []
        for i in range(requests):  # a different pair each time; the first includes
            pid = pairs[97 * i].pair_id  # loading the generators
            t0 = time.perf_counter()
            out = call_api(url, "forget", ["privacy", "embedded", method, [pid], None, "", 0,
                                           True, 80, 1])
            # the REST reply lists every output, the session's state included (as null)
            status = next((o for o in out if isinstance(o, str) and "pair(s) with" in o),
                          str(out))
            times.append(round(time.perf_counter() - t0, 2))
            if "of 1 pair(s) with" not in status:
                raise RuntimeError(f"forget request failed: {status}")
        audit = first_audit(url, pairs, method)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "start_to_page_served_s": round(served, 2),
        "start_to_interactive_page_s": None if interactive is None else round(interactive, 2),
        "page_measured_with": "chromium (gallery shown)" if interactive else "HTTP only",
        "forget_one_pair_s": times, "forget_first_s": times[0],
        "forget_warm_median_s": statistics.median(times[1:]) if len(times) > 1 else None,
        **audit,
        "method": method, "targets": {"page_served_s": 5, "interactive_page_s": 10,
                                         "forget_one_pair_s": 15, "first_audit_s": 60},
        "provenance": provenance({"requests": requests, "method": method}),
    }


def first_audit(url: str, pairs: list, method: str) -> dict:
    """A stakeholder's question, as it was first asked: one person's pairs forgotten, then
    the audit. The first answer must need no Retrain (it trains in the background)."""
    import uuid

    session = uuid.uuid4().hex
    ids = [p.pair_id for p in pairs if p.group == pairs[0].group]
    call_api(url, "forget", ["privacy", "embedded", method, ids, None, "", 0, True, 80, 1],
             session=session)
    t0 = time.perf_counter()
    out = call_api(url, "audit", ["0,5,20", 80], session=session, timeout=1800)
    seconds = round(time.perf_counter() - t0, 2)
    summary = next((o for o in out if isinstance(o, str) and "udit" in o), str(out))
    if "Reference-free audit" not in summary:
        raise RuntimeError(f"the first audit answer was not the reference-free one: {summary}")
    return {"first_audit_s": seconds, "first_audit_pairs": len(ids),
            "first_audit_said": summary}
