"""memory: PSS of idle specialised workers, RSS of the control service with N functions warm."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from fnbox.functions.v1 import invocation_pb2

from bench.fnbox_api import FnboxServer
from bench.payloads import EVENT, TRIVIAL_DESTINATION
from bench.procs import node_descendants, pss_mib, rss_mib, uss_mib
from bench.scenarios.common import Section
from bench.stats import median, rounded


def _deploy_and_invoke(fnbox: FnboxServer, index: int) -> None:
    name = fnbox.api.create_function(f"bench-mem-{index}", f"// mem {index}\n{TRIVIAL_DESTINATION}")
    result = fnbox.api.invoke(invocation_pb2.InvokeFunctionRequest(target=name, event=EVENT))
    if result.outcome != invocation_pb2.OUTCOME_OK:
        raise RuntimeError(f"invocation of {name} answered {result}")


def run(fnbox: FnboxServer, functions: int, idle_s: float = 1.0) -> Section:
    """Deploy and invoke ``functions`` functions on a server without a warm pool, so that every
    node process below it is a specialised worker; then measure them idle."""
    existing = len(node_descendants(fnbox.pid))
    with ThreadPoolExecutor(max_workers=4) as threads:  # the stub's channel is thread-safe
        missing = range(max(0, functions - existing))
        list(threads.map(lambda index: _deploy_and_invoke(fnbox, index), missing))
    time.sleep(idle_s)  # let the workers settle idle (GC, lazy pages) before reading them
    workers = node_descendants(fnbox.pid)
    pss = [value for value in (pss_mib(pid) for pid in workers) if value is not None]
    rss = [value for value in (rss_mib(pid) for pid in workers) if value is not None]
    uss = [value for value in (uss_mib(pid) for pid in workers) if value is not None]
    control_rss = rss_mib(fnbox.pid)
    return {
        "worker_pss_mib": rounded(median(pss), 2),
        "worker_rss_mib": rounded(median(rss), 2),
        "worker_uss_mib": rounded(median(uss), 2),
        "workers_measured": len(pss),
        "workers_pss_total_mib": rounded(sum(pss), 1),
        "functions_target": functions,
        "control_rss_mib": rounded(control_rss, 1) if control_rss is not None else None,
    }
