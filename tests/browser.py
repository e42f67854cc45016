"""Headless Chromium for the browser tests: Debian's chromium driven by its chromedriver."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
AVAILABLE = bool(CHROMIUM and CHROMEDRIVER)

if not AVAILABLE and os.environ.get("CI"):
    raise RuntimeError("CI must install chromium and chromium-driver for the browser tests.")


def new_driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # The machine has no network but loopback: keep Chromium from calling home.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1200,900",
    ):
        options.add_argument(arg)
    # The console, and the DevTools network events (WebSocket frames: websocket_frames()).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver


def websocket_frames(driver: Any) -> list[tuple[str, Any]]:
    """The WebSocket frames the page sent ("sent") and received ("received") since the
    last call, decoded, as DevTools saw them."""
    frames = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        direction = {"Network.webSocketFrameSent": "sent", "Network.webSocketFrameReceived": "received"}.get(
            message["method"]
        )
        if direction is not None:
            with contextlib.suppress(ValueError):
                frames.append((direction, json.loads(message["params"]["response"]["payloadData"])))
    return frames
