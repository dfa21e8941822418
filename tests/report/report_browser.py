"""Headless Chromium driven over the DevTools protocol, with networking off, using only the stdlib.

`open_page(path)` starts Chromium (no proxy reachable, every host name unresolvable, no background
traffic), loads the file, waits until the report's charts have settled, and returns what a reader would
see: which charts drew how many marks, each chart's axes (title, tick labels and their boxes relative to
the chart) and the colours of its rules, every console message and uncaught exception, every network
request the page attempted, and a full-page screenshot.

The WebSocket client is the minimum RFC 6455 needs for a local DevTools connection (masked text frames
out; text, continuation, ping and close frames in).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ENSURE = Path(__file__).with_name("ensure_chromium.sh")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--proxy-server=127.0.0.1:9",  # discard port: nothing listens, every proxied request fails
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]

# A page may load itself and in-page data; anything else is a network request.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:", "devtools:")


def ensure_chromium() -> Path:
    """Chromium's path, installing Debian's package first when it is absent."""
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(ENSURE)], check=True)
    return CHROMIUM


class WebSocket:
    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        if not m:
            raise ValueError(f"not a ws:// URL: {url}")
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        status, _, rest = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n")[0]:
            raise ConnectionError(f"WebSocket handshake refused: {status[:200]!r}")
        self.buffer = rest

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise ConnectionError("DevTools connection closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def pending(self) -> bool:
        return bool(self.buffer) or bool(select.select([self.sock], [], [], 0)[0])

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode, fin = b0 & 0x0F, b0 & 0x80
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools sent close")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if fin:
                    return message.decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class DevTools:
    """Commands with ids, events kept in order, over one browser-level connection."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(f"{method}: no reply within {timeout_s} s")

    def drain(self, seconds: float) -> None:
        """Collect events for a while (late console messages, requests)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.ws.pending():
                reply = json.loads(self.ws.recv())
                if "method" in reply:
                    self.events.append(reply)
            else:
                time.sleep(0.05)


@dataclass
class PageResult:
    status: dict[str, Any]
    charts: list[dict[str, Any]]
    console: list[dict[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot_png: bytes = b""

    @property
    def errors(self) -> list[dict[str, str]]:
        return [m for m in self.console if m["level"] in ("error", "assert")]

    @property
    def network_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


CHART_PROBE = r"""JSON.stringify(Array.from(document.querySelectorAll('script.hn005-spec')).map(function (s) {
  var name = s.getAttribute('data-chart');
  var el = document.getElementById('chart-' + name);
  var svg = el && el.querySelector('svg');
  var box = svg ? svg.getBoundingClientRect() : null;
  function rel(b) { return [b.left - box.left, b.top - box.top, b.right - box.left, b.bottom - box.top]; }
  var axes = !svg ? [] : Array.from(svg.querySelectorAll('.role-axis')).filter(function (a) {
    return a.getAttribute('aria-label');
  }).map(function (a) {
    // labels Vega hides to avoid overlap stay in the SVG with opacity 0: a reader sees only the others
    var texts = Array.from(a.querySelectorAll('.role-axis-label text')).filter(function (t) {
      return t.getAttribute('opacity') !== '0' && getComputedStyle(t).opacity !== '0';
    });
    var title = a.querySelector('.role-axis-title text');
    function rotated(t) { return /rotate\((?!0\))/.test(t.getAttribute('transform') || ''); }
    function label(t) { return { text: t.textContent, box: rel(t.getBoundingClientRect()) }; }
    return { aria: a.getAttribute('aria-label'), title: title ? title.textContent : '',
             rotated: texts.some(rotated), labels: texts.map(label) };
  });
  var rules = !svg ? [] : Array.from(svg.querySelectorAll('.mark-rule path, .mark-rule line'));
  rules = rules.map(function (p) { return p.getAttribute('stroke'); });
  return { name: name, svg: !!svg, marks: svg ? svg.querySelectorAll('.role-mark > *').length : 0,
           width: svg ? box.width : 0, height: svg ? box.height : 0, axes: axes, rule_strokes: rules };
}))"""


def _launch(chromium: Path, profile: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [str(chromium), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        m = re.search(r"DevTools listening on (ws://\S+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError("Chromium did not start:\n" + "".join(lines[-20:]))


def open_page(path: Path, *, settle_timeout_s: float = 90.0, chromium: Path | None = None) -> PageResult:
    """Load `path` in headless Chromium with networking off and report what happened."""
    chromium = chromium or ensure_chromium()
    profile = Path(tempfile.mkdtemp(prefix="hn005-chromium-"))
    proc, url = _launch(chromium, profile)
    ws = WebSocket(url)
    try:
        dt = DevTools(ws)
        target = dt.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            dt.call(f"{domain}.enable", session=session)
        dt.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        dt.call("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        deadline = time.monotonic() + settle_timeout_s
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = dt.call(
                "Runtime.evaluate",
                {"expression": "JSON.stringify(window.__hn005 || null)", "returnByValue": True},
                session=session,
            )
            status = json.loads(r.get("result", {}).get("value") or "null") or {}
            if status.get("done"):
                break
            dt.drain(0.25)
        dt.drain(0.5)
        probe = dt.call(
            "Runtime.evaluate", {"expression": CHART_PROBE, "returnByValue": True}, session=session
        )
        charts = json.loads(probe["result"]["value"])
        shot = dt.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
        )
        console, requests = [], []
        for ev in dt.events:
            method, params = ev["method"], ev.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                console.append({"level": params.get("type", ""), "text": text, "via": "console"})
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                text = details.get("exception", {}).get("description") or details.get("text", "")
                console.append({"level": "error", "text": text, "via": "exception"})
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                console.append(
                    {
                        "level": entry.get("level", ""),
                        "text": entry.get("text", ""),
                        "via": f"log:{entry.get('source', '')}:{entry.get('url', '')}",
                    }
                )
            elif method == "Network.requestWillBeSent":
                requests.append(params.get("request", {}).get("url", ""))
        with contextlib.suppress(ConnectionError, TimeoutError, RuntimeError, OSError):
            dt.call("Browser.close", timeout_s=10)
        return PageResult(status, charts, console, requests, base64.b64decode(shot["data"]))
    finally:
        ws.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
