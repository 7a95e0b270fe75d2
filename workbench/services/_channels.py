"""Sending one alert: a JSON webhook (Slack-compatible) or an e-mail over SMTP, with a one-line result.

Secrets come from the environment of the process that sends (the worker, or the CLI for
`workbench alert test`): a rule names the variable holding its webhook URL, and SMTP's host, port,
user and password are WORKBENCH_SMTP_HOST, WORKBENCH_SMTP_PORT, WORKBENCH_SMTP_USER and
WORKBENCH_SMTP_PASSWORD (WORKBENCH_SMTP_TLS: starttls, ssl or none; the sender WORKBENCH_ALERT_FROM).
No result line holds a URL or a password.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Sent:
    ok: bool
    result: str  # "HTTP 200", "250 OK", "timed out after 5 s", ...
    duration_ms: float


def timeout_s() -> float:
    return float(os.environ.get("WORKBENCH_ALERT_TIMEOUT_S") or DEFAULT_TIMEOUT_S)


def url_host(url: str) -> str:
    """Where a URL points, without its path or query (where a token lives)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"timed out after {timeout_s():g} s"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return f"timed out after {timeout_s():g} s"
    return _short(f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}")


def post_webhook(url: str, payload: dict[str, Any]) -> Sent:
    started = time.perf_counter()
    if urlsplit(url).scheme not in ("http", "https"):
        return Sent(False, "the webhook URL is not http(s)", 0.0)
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "workbench-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s()) as response:  # http(s) only
            status = response.status
        ok, result = 200 <= status < 300, f"HTTP {status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(200).decode("utf-8", "replace") if exc.fp is not None else ""
        ok, result = False, f"HTTP {exc.code}" + (f": {_short(body, 120)}" if body.strip() else "")
    except (OSError, ValueError) as exc:  # refused, unreachable, timed out, bad URL
        ok, result = False, _error(exc)
    return Sent(ok, result, (time.perf_counter() - started) * 1000)


def smtp_settings() -> dict[str, Any]:
    port = int(os.environ.get("WORKBENCH_SMTP_PORT") or 25)
    tls = (os.environ.get("WORKBENCH_SMTP_TLS") or {465: "ssl", 587: "starttls"}.get(port, "none")).lower()
    return {
        "host": os.environ.get("WORKBENCH_SMTP_HOST") or "",
        "port": port,
        "user": os.environ.get("WORKBENCH_SMTP_USER") or "",
        "password": os.environ.get("WORKBENCH_SMTP_PASSWORD") or "",
        "tls": tls,
        "sender": os.environ.get("WORKBENCH_ALERT_FROM") or "workbench@localhost",
    }


def send_email(to: str, subject: str, body: str) -> Sent:
    started = time.perf_counter()
    try:
        conf = smtp_settings()
    except ValueError:
        return Sent(False, "WORKBENCH_SMTP_PORT is not a number", 0.0)
    if not conf["host"]:
        return Sent(False, "WORKBENCH_SMTP_HOST is not set", 0.0)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = conf["sender"], to, subject
    message.set_content(body)
    try:
        client: smtplib.SMTP
        if conf["tls"] == "ssl":
            client = smtplib.SMTP_SSL(
                conf["host"], conf["port"], timeout=timeout_s(), context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(conf["host"], conf["port"], timeout=timeout_s())
        with client:
            if conf["tls"] == "starttls":
                client.starttls(context=ssl.create_default_context())
            if conf["user"]:
                client.login(conf["user"], conf["password"])
            refused = client.send_message(message)
        if refused:
            ok, result = False, _short(f"refused: {', '.join(refused)}")
        else:
            ok, result = True, f"250 accepted for {to}"
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        ok, result = False, _short(f"SMTP {exc.smtp_code}: {text}")
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        ok, result = False, _error(exc)
    return Sent(ok, result, (time.perf_counter() - started) * 1000)
