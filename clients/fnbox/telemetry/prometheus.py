"""Prometheus text exposition (format 0.0.4) of the process's metrics, and ``GET /metrics``.

Names follow the Prometheus conventions for OpenTelemetry metrics: dots become underscores,
the unit is a suffix (``s`` → ``_seconds``), monotonic sums are counters ending in ``_total``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web
from fnbox.telemetry.setup import installed
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Metric, MetricsData, Sum

__all__ = [
    "CONTENT_TYPE",
    "MetricsServer",
    "add_source",
    "handle_metrics",
    "merge",
    "remove_source",
    "render",
    "scrape",
]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_UNITS = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "", "": ""}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def scrape() -> str:
    """The current metrics of this process as exposition text (empty when none installed)."""
    telemetry = installed()
    if telemetry is None:
        return ""
    data = telemetry.scrape_reader.get_metrics_data()
    return render(data) if data is not None else ""


def render(data: MetricsData) -> str:
    """``data`` as Prometheus exposition text; metrics of the same name are merged."""
    families: dict[str, tuple[str, str, list[str]]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                rendered = _family(metric)
                if rendered is None:
                    continue
                name, kind, lines = rendered
                family = families.setdefault(name, (kind, metric.description or "", []))
                family[2].extend(lines)
    out: list[str] = []
    for name in sorted(families):
        kind, help_text, lines = families[name]
        out.append(f"# HELP {name} {_help(help_text)}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(lines)
    return "\n".join(out) + ("\n" if out else "")


def _family(metric: Metric) -> tuple[str, str, list[str]] | None:
    base = _INVALID.sub("_", metric.name.replace(".", "_"))
    unit = _UNITS.get(metric.unit or "", _INVALID.sub("_", metric.unit or ""))
    if unit and not base.endswith("_" + unit):
        base = f"{base}_{unit}"
    data = metric.data
    if isinstance(data, Sum):
        if data.is_monotonic:
            name = base if base.endswith("_total") else base + "_total"
            kind = "counter"
        else:
            name, kind = base, "gauge"
        lines = [_sample(name, p.attributes or {}, p.value) for p in data.data_points]
        return name, kind, lines
    if isinstance(data, Gauge):
        lines = [_sample(base, p.attributes or {}, p.value) for p in data.data_points]
        return base, "gauge", lines
    if isinstance(data, Histogram):
        lines = []
        for point in data.data_points:
            labels = dict(point.attributes or {})
            cumulative = 0
            for bound, count in zip(point.explicit_bounds, point.bucket_counts, strict=False):
                cumulative += count
                lines.append(
                    _sample(f"{base}_bucket", {**labels, "le": _number(bound)}, cumulative)
                )
            lines.append(_sample(f"{base}_bucket", {**labels, "le": "+Inf"}, point.count))
            lines.append(_sample(f"{base}_sum", labels, point.sum))
            lines.append(_sample(f"{base}_count", labels, point.count))
        return base, "histogram", lines
    return None


def _sample(name: str, labels: Mapping[str, object], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    pairs = ",".join(
        f'{_INVALID.sub("_", str(key))}="{_escape(str(val))}"' for key, val in labels.items()
    )
    return f"{name}{{{pairs}}} {_number(value)}"


def _number(value: float) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


MetricsSource = Callable[[], Awaitable[str]]
_sources: list[MetricsSource] = []


def add_source(source: MetricsSource) -> None:
    """Include another process's exposition text (e.g. the other process of ``fnbox serve``)
    in this process's ``GET /metrics``; ``source`` fetches it (``?scope=process`` there)."""
    _sources.append(source)


def remove_source(source: MetricsSource) -> None:
    if source in _sources:
        _sources.remove(source)


def merge(texts: Iterable[str]) -> str:
    """Exposition texts of several processes as one (each family's samples together, once)."""
    families: dict[str, list[str]] = {}
    headers: dict[str, list[str]] = {}
    for text in texts:
        current = ""
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# "):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    current = parts[2]
                    family = headers.setdefault(current, [])
                    if not any(h.startswith(f"# {parts[1]} ") for h in family):
                        family.append(line)
                    families.setdefault(current, [])
                continue
            families.setdefault(current, []).append(line)
    out: list[str] = []
    for name in sorted(families):
        out.extend(headers.get(name, []))
        out.extend(families[name])
    return "\n".join(out) + ("\n" if out else "")


async def handle_metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: this process's metrics in the Prometheus text format, with those of
    the :func:`add_source` processes unless ``?scope=process``."""
    text = scrape()
    if _sources and request.query.get("scope") != "process":
        fetched = await asyncio.gather(*(source() for source in _sources), return_exceptions=True)
        others = [item for item in fetched if isinstance(item, str)]
        for item in fetched:
            if isinstance(item, BaseException):
                log.debug("metrics of another process unavailable: %s", item)
        if others:
            text = merge([text, *others])
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


class MetricsServer:
    """A small HTTP server answering ``GET /metrics`` on ``listen`` (``HOST:PORT``, port 0:
    any free one; :attr:`port` is the bound port after :meth:`start`)."""

    def __init__(self, listen: str, *, purpose: str = "metrics") -> None:
        self.listen = listen
        self.purpose = purpose  # what the start-up log line calls this endpoint
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Start serving; returns ``HOST:PORT``."""
        app = web.Application()
        app.router.add_get("/metrics", handle_metrics)
        host, _, port = self.listen.rpartition(":")
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host or "127.0.0.1", int(port))
        await site.start()
        addresses: Iterable[object] = self._runner.addresses
        bound = next(iter(addresses), None)
        self.port = int(bound[1]) if isinstance(bound, tuple) else int(port)
        log.info("%s on http://%s:%d/metrics", self.purpose, host or "127.0.0.1", self.port)
        return f"{host or '127.0.0.1'}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
