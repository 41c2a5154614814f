"""Tracing and metrics shared by every fnbox process (control service, gateway, delivery).

- :mod:`fnbox.telemetry.settings`: the ``telemetry`` settings section.
- :mod:`fnbox.telemetry.setup`: install the process's tracer and meter providers (OTLP export
  when configured, an in-process reader for the Prometheus scrape endpoint).
- :mod:`fnbox.telemetry.prometheus`: text exposition and the ``GET /metrics`` handler.
- :mod:`fnbox.telemetry.propagation`, :mod:`fnbox.telemetry.messaging`,
  :mod:`fnbox.telemetry.invoke`, :mod:`fnbox.telemetry.http`: the spans of the pipeline (W3C
  trace context in bus message headers and in each invocation request).
"""
