"""OS limits for workers: cgroup detection (v1 or v2, per controller), per-worker memory and
pids cgroups, and rlimits applied before node starts (see ``limit_wrapper``).

Nothing is assumed: ``detect_host_limits`` reads /proc/self/mountinfo and /proc/self/cgroup,
then proves each controller works by creating a probe cgroup and reading a limit back. What
the host does not allow is left out and reported in ``HostLimits.notes``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
_PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CgroupController:
    """One usable controller: where this pool's own cgroups live."""

    name: str
    version: int
    base: Path


@dataclass(slots=True)
class HostLimits:
    """What the host lets the executor enforce, as detected at start."""

    memory: CgroupController | None = None
    pids: CgroupController | None = None
    notes: list[str] = field(default_factory=list)
    # argv prefix that runs the rest of an argv in a new, empty network namespace (empty: none).
    netns_argv: tuple[str, ...] = ()

    @property
    def netns(self) -> bool:
        return bool(self.netns_argv)

    def netns_prefix(self) -> list[str]:
        return list(self.netns_argv)

    def summary(self) -> dict[str, str]:
        def one(c: CgroupController | None) -> str:
            return f"cgroup v{c.version} at {c.base}" if c else "unavailable"

        return {
            "memory": one(self.memory),
            "pids": one(self.pids),
            "network_namespace": "unshare --net" if self.netns else "unavailable",
            "notes": "; ".join(self.notes),
        }

    def remove(self) -> None:
        """Remove this pool's base cgroups (they must be empty)."""
        for c in {c.base: c for c in (self.memory, self.pids) if c}.values():
            _rmdir_quiet(c.base)


@dataclass(frozen=True, slots=True)
class _Mount:
    fstype: str
    root: str
    mountpoint: str
    options: frozenset[str]


def _mounts() -> list[_Mount]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        opts = frozenset(rfields[2].split(","))
        mounts.append(_Mount(rfields[0], fields[3], fields[4], opts))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """controller → own path; the v2 path under key ''."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            own[c] = path
    return own


def _join(mount: _Mount, path: str) -> Path | None:
    root = mount.root.rstrip("/")
    if root and not (path == root or path.startswith(root + "/")):
        return None
    return Path(mount.mountpoint) / path[len(root) :].lstrip("/")


def _probe(controller: str, version: int, base: Path, created: set[Path]) -> bool:
    """Create a child cgroup under ``base``, set a limit, read it back, remove it."""
    limit_file = {
        ("memory", 1): "memory.limit_in_bytes",
        ("memory", 2): "memory.max",
        ("pids", 1): "pids.max",
        ("pids", 2): "pids.max",
    }[(controller, version)]
    value = str(64 * MIB) if controller == "memory" else "16"
    if version == 2:
        # A v2 child only gets the controllers its parent enables for its subtree; this fails
        # (EBUSY) when our own cgroup holds processes, the "no internal processes" rule.
        (base.parent / "cgroup.subtree_control").write_text(f"+{controller}")
    if not base.exists():
        base.mkdir()
        created.add(base)
    if version == 2:
        (base / "cgroup.subtree_control").write_text(f"+{controller}")
    probe = base / f"probe-{secrets.token_hex(3)}"
    probe.mkdir()
    try:
        (probe / limit_file).write_text(value)
        return (probe / limit_file).read_text().strip() == value
    finally:
        probe.rmdir()


def detect_netns(mode: str) -> tuple[str, ...]:
    """The argv prefix giving a worker an empty network namespace, if this host allows it
    (``mode`` is ExecutorSettings.network_namespaces). Proved by running it once."""
    unshare = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
    true = shutil.which("true", path="/usr/bin:/bin")
    if mode == "off" or unshare is None or true is None:
        return ()
    argv = (unshare, "--net", "--")
    try:
        ok = subprocess.run([*argv, true], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return argv if ok else ()


def detect_host_limits(mode: str, netns_mode: str = "auto") -> HostLimits:
    """Find usable memory and pids cgroups (``mode`` is ExecutorSettings.use_cgroups) and
    whether workers can get their own network namespace."""
    host = HostLimits(netns_argv=detect_netns(netns_mode))
    if netns_mode != "off" and not host.netns:
        host.notes.append(
            "network namespaces: not permitted here (no-network functions rely on the runtime)"
        )
    if mode == "off":
        host.notes.append("cgroups disabled by settings")
        return host
    try:
        mounts, own = _mounts(), _own_cgroups()
    except OSError as exc:
        host.notes.append(f"cannot read /proc: {exc}")
        return host
    name = f"fnbox-{os.getpid()}-{secrets.token_hex(3)}"
    created: set[Path] = set()
    for controller in ("memory", "pids"):
        found: CgroupController | None = None
        v1 = next((m for m in mounts if m.fstype == "cgroup" and controller in m.options), None)
        v2 = next((m for m in mounts if m.fstype == "cgroup2"), None)
        candidates: list[tuple[int, _Mount, str]] = []
        if v1 and controller in own:
            candidates.append((1, v1, own[controller]))
        if v2 and "" in own:
            candidates.append((2, v2, own[""]))
        for version, mount, path in candidates:
            parent = _join(mount, path)
            if parent is None:
                continue
            _sweep_stale(parent)
            if version == 2:
                avail = parent / "cgroup.controllers"
                if not avail.exists() or controller not in avail.read_text().split():
                    host.notes.append(f"{controller}: not in cgroup v2 controllers of {parent}")
                    continue
            base = parent / name
            try:
                if _probe(controller, version, base, created):
                    found = CgroupController(controller, version, base)
                    break
                host.notes.append(f"{controller}: cgroup v{version} limit did not stick")
            except OSError as exc:
                host.notes.append(f"{controller}: cgroup v{version} at {parent}: {exc.strerror}")
        if found is None and not candidates:
            host.notes.append(f"{controller}: no cgroup hierarchy")
        setattr(host, controller, found)
    in_use = {c.base for c in (host.memory, host.pids) if c}
    for base in created - in_use:
        _rmdir_quiet(base)
    return host


def _sweep_stale(parent: Path) -> None:
    """Remove the empty cgroups left by pools whose process is gone (killed before close)."""
    try:
        bases = [p for p in parent.glob("fnbox-*-*") if p.is_dir()]
    except OSError:
        return
    for base in bases:
        try:
            owner = int(base.name.split("-")[1])
            os.kill(owner, 0)
            continue  # alive (or a reused pid): not ours to touch
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue
        # rmdir refuses a cgroup that still holds processes, so nothing running is removed.
        with contextlib.suppress(OSError):
            for child in base.iterdir():
                if child.is_dir():
                    child.rmdir()
            base.rmdir()
            log.info("removed stale cgroup %s", base)


def _rmdir_quiet(path: Path) -> bool:
    try:
        path.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.warning("cannot remove cgroup %s: %s", path, exc.strerror)
        return False


class WorkerCgroup:
    """The memory and pids cgroups of one worker (v1: one folder per controller)."""

    def __init__(self, host: HostLimits, name: str) -> None:
        self.host = host
        self.dirs: dict[str, Path] = {}
        self._usage_file: str | None = None
        # Private memory the process had when it joined: charged to the cgroup it came from.
        self._before_join = 0
        for c in (host.memory, host.pids):
            if c is not None:
                self.dirs[c.name] = c.base / name

    def create(self, *, memory_mib: int, pids_max: int) -> None:
        for path in set(self.dirs.values()):
            path.mkdir(exist_ok=True)
        if "pids" in self.dirs:
            (self.dirs["pids"] / "pids.max").write_text(str(pids_max))
        if "memory" in self.dirs:
            if self.host.memory and self.host.memory.version == 2:
                with contextlib.suppress(OSError):
                    (self.dirs["memory"] / "memory.swap.max").write_text("0")
            if not self.set_memory(memory_mib):
                raise OSError(errno.EINVAL, f"cannot set memory limit {memory_mib} MiB")

    def join(self, pid: int) -> None:
        """Move ``pid`` (all its threads) into these cgroups; OSError if it cannot.

        The pages it used so far stay charged where they were (kernels no longer move
        charges); ``memory_usage`` counts them on top of the cgroup's own figure."""
        for procs in self.procs_files:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, str(pid).encode())
            finally:
                os.close(fd)
        if "memory" in self.dirs:
            self._before_join = private_bytes(pid) or 0

    @property
    def procs_files(self) -> tuple[str, ...]:
        return tuple(str(p / "cgroup.procs") for p in sorted(set(self.dirs.values())))

    def set_memory(self, mib: int) -> bool:
        """Set the memory (and, on v1, memory+swap) limit; False when the kernel refuses."""
        path = self.dirs.get("memory")
        if path is None or self.host.memory is None:
            return False
        value = str(mib * MIB)
        if self.host.memory.version == 2:
            return _write(path / "memory.max", value)
        files = [path / "memory.limit_in_bytes"]
        if (path / "memory.memsw.limit_in_bytes").exists():
            files.append(path / "memory.memsw.limit_in_bytes")
        # memsw must stay >= memory: lower memory first, raise memsw first.
        if all(_write(f, value) for f in files):
            return True
        return all(_write(f, value) for f in reversed(files))

    def memory_usage(self) -> int | None:
        path = self.dirs.get("memory")
        if path is None or self.host.memory is None:
            return None
        if self._usage_file is None:
            name = "memory.current" if self.host.memory.version == 2 else "memory.usage_in_bytes"
            self._usage_file = str(path / name)
        try:
            return int(read_small(self._usage_file)) + self._before_join
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        path = self.dirs.get("memory")
        if path is None or self.host.memory is None:
            return 0
        name = "memory.events" if self.host.memory.version == 2 else "memory.oom_control"
        try:
            for line in (path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> bool:
        return all(_rmdir_quiet(p) for p in set(self.dirs.values()))


def private_bytes(pid: int) -> int | None:
    """Private resident memory of ``pid`` (resident minus shared pages), None if unreadable."""
    try:
        fields = read_small(f"/proc/{pid}/statm").split()
        return (int(fields[1]) - int(fields[2])) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def read_small(path: str) -> bytes:
    """A small kernel file (cgroup, /proc) read with one read: no Path, no text layer
    (supervision reads these for every worker at each maintenance round)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


# Runs as the worker's first process image and then execs node in place (same pid), so the
# rlimits are set (and the cgroups joined, for a caller that passes their procs files) before
# node's first instruction. A preexec_fn would do the same from a forked copy of this process,
# but that fork (no vfork with preexec_fn) stalls the event loop ~10 ms per spawn and is unsafe
# in a process running gRPC's threads. Workers join their cgroups from the parent instead
# (WorkerProcess.start: the join then overlaps node's start).
_WRAPPER = (
    "set -e; "
    'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; '
    "ulimit -n {nofile}; ulimit -c 0; {address_space}"
    'exec "$@"'
)


def limit_wrapper(
    *, procs_files: tuple[str, ...], nofile: int, address_space_mib: int | None
) -> list[str]:
    """The argv prefix that applies a worker's OS limits, then execs the rest of the argv."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
    address_space = f"ulimit -v {address_space_mib * 1024}; " if address_space_mib else ""
    script = _WRAPPER.format(nofile=int(nofile), address_space=address_space)
    return ["/bin/sh", "-c", script, "fnbox-worker", *procs_files, "--"]
