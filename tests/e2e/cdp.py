"""Debian's chromium, headless, driven over the DevTools protocol (python3-websocket): no browser
download, no npm. Used by the dashboard's browser test and its bench.

    with Browser(tmp) as b:
        b.open("http://127.0.0.1:8464/")        # waits for the load event
        b.js("document.title")                  # Runtime.evaluate, by value
        b.wait_for("document.querySelectorAll('tr').length > 3", timeout=30)
        b.screenshot("page.png")
        b.errors                                 # console errors, exceptions, CSP reports
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import time

import websocket  # python3-websocket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Browser:
    def __init__(self, tmp, width=1400, height=1000):
        self.profile = os.path.join(tmp, "chromium-profile")
        os.makedirs(self.profile, exist_ok=True)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        if os.path.exists(port_file):
            os.unlink(port_file)  # a previous run's
        self.log = open(os.path.join(tmp, "chromium.log"), "w")
        self.ws = None
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             "--user-data-dir=" + self.profile, "--window-size=%d,%d" % (width, height),
             "about:blank"], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._connect()
        except Exception:
            self.close()
            raise

    def _connect(self):
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("chromium did not start; see " + self.log.name)
            time.sleep(0.05)
        port, path = open(port_file).read().split("\n")[:2]
        # No Origin header: chromium refuses DevTools connections whose Origin it was not told to
        # allow (point releases differ on whether the default one passes); none is always allowed.
        self.ws = websocket.create_connection("ws://127.0.0.1:%s%s" % (port, path), timeout=120,
                                              suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.errors = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable", session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Ends chromium and every process it started (its own process group)."""
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(10)
                return
            except subprocess.TimeoutExpired:
                pass

    def _note(self, msg):
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append("exception: %s %s" % (d.get("text"), d.get("exception", {})
                                                      .get("description", "")))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.%s: %s" % (p["type"], " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            self.errors.append("log: %s %s" % (e.get("text"), e.get("url", "")))
        elif method:
            self.events.append(msg)

    def call(self, method, session=False, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            r = json.loads(self.ws.recv())
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r.get("result", {})
            self._note(r)

    def pump(self, seconds):
        """Reads events for up to `seconds` (returns at the first quiet read)."""
        self.ws.settimeout(seconds)
        try:
            self._note(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self.ws.settimeout(120)

    def open(self, url, timeout=120):
        """Navigates and waits for the load event; returns the navigation's duration (ms) as the
        page measured it (performance timing)."""
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'",
                      timeout)
        return self.js("(function(){var n=performance.getEntriesByType('navigation')[0];"
                       "return n ? n.loadEventEnd - n.startTime : -1})()")

    def js(self, expression):
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_for(self, expression, timeout=60):
        """Polls `expression` until it is true (a condition, not a fixed sleep)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.js(expression):
                    return True
            except RuntimeError:
                pass  # the page is between documents
            self.pump(0.1)
        raise TimeoutError("not true within %ss: %s" % (timeout, expression))

    def screenshot(self, path, full_page=True, max_height=6000):
        """A PNG of the page (the whole page, up to max_height CSS pixels)."""
        params = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"],
                "height": min(size["height"], max_height), "scale": 1})
        data = self.call("Page.captureScreenshot", session=True, **params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
