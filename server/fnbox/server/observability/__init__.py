"""Observability of the control service: invocation metrics, usage metering (execution time
per function per day) and function logs (recent errors, sampled successes, live tail).

:class:`~fnbox.server.observability.service.Observability` owns the parts; the dispatcher
reports every finished invocation to its ``observer``.
"""
