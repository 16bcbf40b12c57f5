"""The console's HTTP server: the page, and the JSON API the page calls.

- `GET /`: the page (static; it asks for the token in a form, or takes it once from the URL
  fragment, `/#token=...`, which no request carries), `GET /static/*` its script and style,
  `GET /healthz` a liveness probe. None of these need the token.
- `GET /api/queue`: open alerts to triage, highest priority first, with audit items.
- `GET /api/alerts/{alert_id}`: an alert, every message of it, and its labels.
- `GET /api/entities/{type}/{id}`: an entity's earlier alerts and the labels on it.
- `POST /api/labels`: a verdict. It is validated as a `labels` record, then written to the
  store and published to the labels topic (the record of truth, which the worker reads) as
  one step: a label that cannot be published is removed from the store again.

Every `/api/*` request carries `Authorization: Bearer <token>`; after `MAX_FAILURES` wrong
tokens from one address, that address is answered 429 for a time that doubles with each
further failure (`Lockout`). Ids and parameters with control characters are refused with 400.
The page sets a strict content-security policy and builds its DOM from text nodes only, so
alert text (which attackers write) is never interpreted as markup.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from detectors.events import InvalidEvent, format_rfc3339, parse_event, parse_rfc3339
from streams.kafka import ensure_topics
from streams.settings import Settings
from streams.store import BadRecord, Store

log = logging.getLogger("abuse_monitor.console")

Record = dict[str, Any]

SEVERITIES = ("info", "warning", "critical")
ENTITY_TYPES = ("signal", "actor", "target", "campaign")
# The subject type of labels given on an entity itself (a reported target is an account).
LABEL_SUBJECT = {"actor": "actor", "target": "actor", "campaign": "campaign"}
MAX_LIMIT = 1000
MIN_TOKEN_LENGTH = 16
# Wrong tokens an address may send before it is locked out; the first lockout lasts
# LOCKOUT_S and each further failure doubles it, up to MAX_LOCKOUT_S.
MAX_FAILURES = 5
LOCKOUT_S = 1.0
MAX_LOCKOUT_S = 300.0
MAX_TRACKED_ADDRESSES = 10_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", Settings)
TOKEN = web.AppKey("token", str)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
STATIC = web.AppKey("static", dict[str, tuple[bytes, str]])

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    # The first URL may carry the token in its fragment: no Referer header for it either.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", charset="utf-8"
    )


def _error(status: int, message: str, **extra: object) -> web.Response:
    return _json({"error": message, **extra}, status=status)


class BadParameter(Exception):
    """A query parameter the API cannot use; answered with 400 and the reason."""


def _checked(name: str, value: str) -> str:
    """A parameter or path id as given, unless it could never match a stored one."""
    if len(value) > 256:
        raise BadParameter(f"{name}: longer than 256 characters")
    found = _CONTROL.search(value)
    if found:
        raise BadParameter(
            f"{name}: must not contain control characters (U+{ord(found.group()):04X})"
        )
    return value


def _choice(request: web.Request, name: str, allowed: tuple[str, ...] | None = None) -> str | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    if allowed is not None and value not in allowed:
        raise BadParameter(f"{name}: expected one of {', '.join(allowed)}")
    return _checked(name, value)


def _time(request: web.Request, name: str) -> float | None:
    """An RFC 3339 time parameter, as epoch seconds (the store's time filters)."""
    value = request.query.get(name, "").strip()
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise BadParameter(f"{name}: expected an RFC 3339 time with an offset") from None


def _limit(request: web.Request, default: int) -> int:
    value = request.query.get("limit", "").strip()
    if not value:
        return default
    if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= MAX_LIMIT:
        raise BadParameter(f"limit: expected a whole number from 1 to {MAX_LIMIT}")
    return int(value)


class Lockout:
    """Wrong tokens counted per client address. After `MAX_FAILURES` in a row, the address
    is refused without a check for `LOCKOUT_S`, doubled at each further failure (at most
    `MAX_LOCKOUT_S`); a right token clears its count. At most `MAX_TRACKED_ADDRESSES` are
    remembered, the least recently failing forgotten first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # count, until

    def wait(self, address: str) -> float:
        """Seconds the address must wait before its next try; 0 if it may try now."""
        _, until = self.failures.get(address, (0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, address: str) -> int:
        count = self.failures.pop(address, (0, 0.0))[0] + 1
        until = 0.0
        if count >= MAX_FAILURES:
            until = self.clock() + min(MAX_LOCKOUT_S, LOCKOUT_S * 2 ** (count - MAX_FAILURES))
        self.failures[address] = (count, until)
        while len(self.failures) > MAX_TRACKED_ADDRESSES:
            self.failures.popitem(last=False)
        return count

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)


LOCKOUT = web.AppKey("lockout", Lockout)


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The token on `/api/*`, with a lockout of repeated failures, and bad query parameters
    or ids as 400 with the reason."""
    if request.path.startswith("/api/"):
        lockout, address = request.app[LOCKOUT], request.remote or "unknown"
        wait = lockout.wait(address)
        if wait > 0:
            response = _error(429, "too many wrong tokens: wait and try again")
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        expected = request.app[TOKEN].encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            count = lockout.failed(address)
            log.warning("console: wrong or missing token from %s (%d in a row)", address, count)
            response = _error(401, "missing or wrong token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="abuse-monitor console"'
            return response
        lockout.succeeded(address)
    try:
        return await handler(request)
    except BadParameter as exc:
        return _error(400, str(exc))
    except BadRecord as exc:  # a value the database cannot hold: no stored record has it
        return _error(400, f"not a value the store can hold: {exc}")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _PAGE_HEADERS.items():
        response.headers.setdefault(name, value)


async def page(request: web.Request) -> web.Response:
    return _static(request, "index.html")


async def static(request: web.Request) -> web.Response:
    return _static(request, request.match_info["name"])


def _static(request: web.Request, name: str) -> web.Response:
    found = request.app[STATIC].get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    return web.Response(body=body, headers={"Content-Type": content_type})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def queue(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    items = request.app[STORE].queue(
        labeler=_choice(request, "labeler"),
        detector=_choice(request, "detector"),
        severity=_choice(request, "severity", SEVERITIES),
        since=_time(request, "since"),
        until=_time(request, "until"),
        audit_rate=settings.audit_rate,
        limit=_limit(request, 100),
    )
    return _json({"items": items})


async def alert_detail(request: web.Request) -> web.Response:
    store = request.app[STORE]
    alert_id = _checked("alert_id", request.match_info["alert_id"])
    latest = store.alert(alert_id)
    if latest is None:
        return _error(404, f"no alert {alert_id}")
    return _json(
        {
            "alert": latest,
            "messages": store.alert_messages(alert_id),
            "labels": _newest_first(store.labels(subject_type="alert", subject_id=alert_id)),
        }
    )


async def entity_history(request: web.Request) -> web.Response:
    store = request.app[STORE]
    entity_type = request.match_info["entity_type"]
    entity_id = _checked("entity_id", request.match_info["entity_id"])
    if entity_type not in ENTITY_TYPES:
        return _error(404, f"entity type: expected one of {', '.join(ENTITY_TYPES)}")
    alerts = store.alerts(entity_type=entity_type, entity_id=entity_id, limit=_limit(request, 50))
    labels: list[Record] = []
    subject_type = LABEL_SUBJECT.get(entity_type)
    if subject_type is not None:
        labels.extend(store.labels(subject_type=subject_type, subject_id=entity_id))
    for alert in alerts:
        labels.extend(store.labels(subject_type="alert", subject_id=alert["alert_id"]))
    return _json(
        {
            "entity": {"type": entity_type, "id": entity_id},
            "alerts": alerts,
            "labels": _newest_first(labels),
        }
    )


def _newest_first(labels: list[Record]) -> list[Record]:
    unique = {label["label_id"]: label for label in labels}
    return sorted(unique.values(), key=lambda label: str(label.get("ts", "")), reverse=True)


async def add_label(request: web.Request) -> web.Response:
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        return _error(400, "invalid_json: the body is not JSON", reason="invalid_json")
    if not isinstance(body, dict):
        return _error(400, "not_an_object: the body is not a JSON object", reason="not_an_object")
    label: Record = {"label_id": uuid.uuid4().hex, "ts": format_rfc3339(time.time())}
    for name in ("subject_type", "subject_id", "verdict", "labeler", "policy", "note"):
        value = body.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value is None or (value == "" and name in ("policy", "note")):
            continue  # optional and left empty
        label[name] = value
    try:
        parsed = parse_event("labels", orjson.dumps(label))
    except InvalidEvent as exc:
        return _error(400, str(exc), reason=exc.reason)
    # As validated (free text without control characters), as the worker stores it.
    label = parsed.model_dump(mode="json", exclude_none=True) | {"ts": label["ts"]}
    store = request.app[STORE]
    if label["subject_type"] == "alert" and store.alert(label["subject_id"]) is None:
        return _error(404, f"no alert {label['subject_id']}")
    # Stored and published as one step: stored first (a label the store refuses is not
    # published), then published to the topic, the record the worker and every other store
    # read; a label that could not be published is removed from the store again.
    try:
        store.add_label(label)
    except BadRecord as exc:
        return _error(400, f"the store refused the label: {exc}")
    settings = request.app[SETTINGS]
    try:
        await request.app[PRODUCER].send_and_wait(
            settings.labels_topic, value=orjson.dumps(label), key=label["subject_id"].encode()
        )
    except KafkaError as exc:
        store.remove_label(label["label_id"])
        return _error(503, f"could not publish the label: {exc}")
    return _json(label, status=201)


def _static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("streams.console") / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            files[entry.name] = (entry.read_bytes(), _CONTENT_TYPES[suffix])
    return files


def create_app(settings: Settings, store: Store, token: str) -> web.Application:
    """The console as an aiohttp application; its labels producer starts with it."""
    if len(token) < MIN_TOKEN_LENGTH or token != token.strip():
        raise ValueError(
            f"the console token must be at least {MIN_TOKEN_LENGTH} characters,"
            " without leading or trailing blanks"
        )
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[STORE] = store
    app[TOKEN] = token
    app[LOCKOUT] = Lockout()
    app[STATIC] = _static_files()
    app.on_response_prepare.append(_security_headers)

    async def producer(app: web.Application) -> AsyncIterator[None]:
        await ensure_topics(settings, {settings.labels_topic: settings.input_partitions})
        running = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            acks="all",
            **settings.kafka_client_options(),
        )
        await running.start()
        app[PRODUCER] = running
        yield
        await running.stop()

    app.cleanup_ctx.append(producer)
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/queue", queue)
    app.router.add_get("/api/alerts/{alert_id}", alert_detail)
    app.router.add_get("/api/entities/{entity_type}/{entity_id:.+}", entity_history)
    app.router.add_post("/api/labels", add_label)
    return app


@dataclass
class RunningConsole:
    """A console serving in the current event loop; `stop()` ends it."""

    runner: web.AppRunner
    url: str
    token: str
    token_generated: bool

    @property
    def login_url(self) -> str:
        """The URL with the token in its fragment, to open once (the page then keeps it for
        the tab and removes it from the address): a fragment is never sent to the server,
        so no proxy or server log sees it."""
        return f"{self.url}#token={quote(self.token, safe='')}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_console(
    settings: Settings,
    store: Store,
    *,
    host: str | None = None,
    port: int | None = None,
) -> RunningConsole:
    """Serve the console on `host:port` (default: the settings'; port 0 picks a free one)."""
    configured = settings.console_token.get_secret_value()
    token = configured or secrets.token_urlsafe(24)
    # No access log: nothing in it is needed, and an old link may carry a token.
    runner = web.AppRunner(create_app(settings, store, token), access_log=None)
    await runner.setup()
    host = settings.console_host if host is None else host
    site = web.TCPSite(runner, host, settings.console_port if port is None else port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningConsole(runner, f"http://{shown}:{bound_port}/", token, not configured)
