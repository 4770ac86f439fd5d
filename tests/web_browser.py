"""Headless Chromium for the web-export tests (Debian's chromium and chromedriver, driven by selenium).

``./dev test`` installs the two Debian packages when they are missing and it runs as root (as CI
does); elsewhere the browser tests skip, saying what to install.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from typing import Any

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1200,860",
)


def start_browser() -> Any:
    """A headless Chromium session, or a pytest skip naming what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (in the test extra)")
    from selenium.webdriver.chrome.service import Service

    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "no headless browser: apt-get install chromium chromium-driver (./dev test does, as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(180)
    driver.set_page_load_timeout(60)
    return driver


WAIT_FOR_RENDER = """
const done = arguments[arguments.length - 1];
const poll = () => {
  if (window.oscenRenderError) return done({error: window.oscenRenderError});
  if (!window.oscenRender) return setTimeout(poll, 20);
  window.oscenRender.then(
    (channels) => done({channels, faults: window.oscenFaults || [], wall: window.oscenRenderWallSeconds}),
    (err) => done({error: String(err)}));
};
poll();
"""


def browser_render(
    driver: Any, url: str, seconds: float, params: list[list[Any]] = (), events: list[list[Any]] = ()
) -> dict[str, Any]:
    """Open the export's page in render mode; returns {"channels": (c, n) array, "faults", "wall"}."""
    query = {"render": f"{seconds:g}"}
    if params:
        query["params"] = json.dumps(list(params))
    if events:
        query["events"] = json.dumps(list(events))
    driver.get(url + "?" + urllib.parse.urlencode(query))
    result = driver.execute_async_script(WAIT_FOR_RENDER)
    if "error" in result:
        logs = [entry["message"] for entry in driver.get_log("browser")]
        raise AssertionError(f"the page failed: {result['error']}\nbrowser log:\n" + "\n".join(logs))
    result["channels"] = np.array(result["channels"], dtype=np.float64)
    return result
