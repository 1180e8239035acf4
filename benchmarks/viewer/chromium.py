"""A small Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (stdlib only).

Chromium reads NUL-terminated JSON commands from file descriptor 3 and writes replies and events to
descriptor 4, so no websocket library, port or browser download is needed: only a ``chromium`` (Debian's
package) or ``google-chrome`` on the PATH. Used by the viewer's browser test and its load benchmark.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["BROWSERS", "Browser", "CDPError", "Page", "find_chromium"]

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class CDPError(RuntimeError):
    """The browser answered a command with an error, died, or did not answer in time."""


def find_chromium() -> str | None:
    """The first Chromium-family browser on the PATH (``$HOPGYM_CHROMIUM`` first when set), or None."""
    configured = os.environ.get("HOPGYM_CHROMIUM")
    if configured:
        return shutil.which(configured) or (configured if Path(configured).is_file() else None)
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _high_fd(fd: int) -> int:
    """``fd`` moved to a descriptor number >= 10 (close-on-exec); the original is closed."""
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """A headless Chromium process and its DevTools pipe. Use as a context manager."""

    def __init__(self, executable: str, *, width: int = 1400, height: int = 900, timeout_s: float = 60.0):
        self.executable = executable
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="hopgym-chromium-")
        # A file, not a pipe: Chromium logs freely and would block on a full pipe nobody reads.
        self._log = open(os.path.join(self._profile, "stderr.log"), "w+b")  # noqa: SIM115
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        # Our ends stay here; the browser's ends go to its descriptors 3 and 4. They are first moved to
        # descriptors >= 10 so that putting one on 3 cannot overwrite the other.
        to_browser_r, self._to_browser = (_high_fd(fd) for fd in os.pipe())
        self._from_browser, from_browser_w = (_high_fd(fd) for fd in os.pipe())

        def _pipes_on_3_and_4() -> None:  # runs in the child between fork and exec
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        args = [
            executable,
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium refuses its sandbox
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--allow-file-access-from-files",
            f"--window-size={width},{height}",
            f"--user-data-dir={self._profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # close_fds=False: closing happens after preexec_fn and would close 3 and 4 again. Python opens
        # every other descriptor close-on-exec, so nothing else leaks into the browser.
        self._proc = subprocess.Popen(
            args,
            preexec_fn=_pipes_on_3_and_4,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send one command and wait for its reply; returns its ``result``. Events seen meanwhile are kept
        in ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError as exc:
            raise CDPError(f"{method}: the browser has exited ({self._stderr()})") from exc
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline, method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(
                        f"{method}: {reply['error'].get('message')} {reply['error'].get('data', '')}"
                    )
                return reply.get("result", {})
            self.events.append(reply)

    def _read_message(self, deadline: float, method: str) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"{method}: no answer from the browser in {self.timeout_s:g} s")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise CDPError(f"{method}: the browser has exited ({self._stderr()})")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def _stderr(self) -> str:
        if self._proc.poll() is None:
            return "still running"
        self._log.seek(0)
        return f"exit {self._proc.returncode}: {self._log.read().decode(errors='replace')[-2000:]}"

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        return page

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(CDPError):
                self.send("Browser.close")
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Page:
    """One tab, attached through a flat session."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited); a thrown exception raises CDPError."""
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"JavaScript error: {text}")
        return result.get("result", {}).get("value")

    def navigate(self, url: str, *, ready: str = "true", timeout_s: float = 60.0) -> None:
        """Open ``url`` and wait until the JavaScript expression ``ready`` is true."""
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"cannot open {url}: {result['errorText']}")
        self.wait_for(ready, timeout_s=timeout_s)

    def wait_for(self, expression: str, *, timeout_s: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.evaluate(
                    f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()"
                )
            except CDPError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"timed out after {timeout_s:g} s waiting for {expression}")
            time.sleep(0.05)

    def type_text(self, text: str) -> None:
        """Type into the focused element, as a keyboard would (fires input events)."""
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the first element matching ``selector`` (scrolled into view)."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'nearest'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise CDPError(f"no element matches {selector}")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
            )

    def screenshot(self, path: str | Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out
