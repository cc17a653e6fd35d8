"""The operating-system layers around policy processes: detected, applied, reported.

A policy that breaks out of the Python sandbox (``bgen.runner.sandbox``) runs arbitrary code
in its process. These layers make that worth little; each is detected when the sandbox host
starts and reported by ``isolation_report()`` (``python -m bgen.runner.isolation``, the CLIs'
first line, ``GET /health``):

    layer         mechanism                                   stops
    ───────────   ─────────────────────────────────────────   ──────────────────────────────
    environment   the host is exec'd with ``HOST_ENV`` only   reading keys from the process's
                  (never forked from a process holding keys)  memory or /proc/self/environ
    namespaces    bubblewrap (``bwrap``), else ``unshare``    network (own empty net ns), other
                  as root: net, PID, IPC, UTS, mount          processes (own PID ns), files
                                                              outside a read-only view (bwrap)
    landlock      Landlock LSM (kernel ≥ 5.13), syscalls      reading outside the interpreter
                  through ctypes                              and package paths, any write,
                                                              TCP except the renderer ports
    seccomp       libseccomp (``libseccomp.so.2``) through    execve, fork, ptrace, sockets,
                  ctypes                                      signals to other processes,
                                                              mount/namespace/bpf syscalls
    rlimits       ``resource.setrlimit``                      memory, CPU, file size, processes
    uid           setuid(nobody) when root                    root's privileges; makes NPROC hold

Why ctypes and not a package: libseccomp's own Python bindings ship only for the system
interpreter (Debian's ``python3-seccomp``), not for the interpreter bgen may run on, while the
C library is on every Debian/Ubuntu system; the Landlock interface is three syscalls with fixed
structs (linux/landlock.h). Neither adds a runtime dependency.

``--render`` keeps every layer except: the network namespace (the renderer listens on the
host's loopback), and the socket rule of seccomp, which then allows AF_INET/AF_INET6 sockets;
where Landlock supports TCP rules (ABI ≥ 4) connections are limited to the renderer ports.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import shutil
import subprocess
import sys

#: The only environment the sandbox host (and so every policy process) ever has.
HOST_ENV = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "BLIS_NUM_THREADS": "1",
    "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
}

LAYER_NAMES = ("environment", "namespaces", "landlock", "seccomp", "rlimits", "uid")


def package_root() -> str:
    """The directory holding the ``bgen`` package (a source tree, site-packages or a zip), with
    symbolic links resolved: the sandbox host sees only the real directories."""
    import bgen
    return os.path.dirname(os.path.dirname(os.path.realpath(bgen.__file__)))


# ============================================================================================
# Detection (parent side; cached, each probe at most once per process)
# ============================================================================================

@functools.lru_cache(maxsize=None)
def _runs(argv: tuple[str, ...]) -> tuple[bool, str]:
    try:
        done = subprocess.run(list(argv), env={}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10,
                              close_fds=True)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    if done.returncode != 0:
        return False, done.stderr.decode("utf-8", "replace").strip()[:300] or \
            f"exit status {done.returncode}"
    return True, ""


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def namespace_tool() -> tuple[str | None, str]:
    """("bwrap" | "unshare" | None, why): the tool that will put the host in namespaces."""
    path = bwrap_path()
    problems = []
    if path:
        ok, why = _runs((path, "--unshare-net", "--unshare-pid", "--die-with-parent",
                         "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"))
        if ok:
            return "bwrap", path
        problems.append(f"bwrap does not work here ({why})")
    else:
        problems.append("bwrap is not installed")
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        ok, why = _runs((unshare, "--net", "--pid", "--ipc", "--uts", "--mount", "--fork",
                         "--mount-proc", "true"))
        if ok:
            return "unshare", unshare
        problems.append(f"unshare does not work here ({why})")
    elif unshare:
        problems.append("unshare needs root")
    else:
        problems.append("unshare is not installed")
    return None, "; ".join(problems)


@functools.lru_cache(maxsize=None)
def _libseccomp():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def seccomp_version() -> str | None:
    """libseccomp's version ("2.5.4"), or None when the library cannot be loaded."""
    lib = _libseccomp()
    if lib is None:
        return None

    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    lib.seccomp_version.restype = ctypes.POINTER(Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


_libc = ctypes.CDLL(None, use_errno=True)
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: not available). Source: linux/landlock.h."""
    if sys.platform != "linux":
        return 0
    version = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                            ctypes.c_uint32(1))
    return max(int(version), 0)


def host_command(python_argv: list[str], render: bool) -> tuple[list[str], str]:
    """The argv that starts the sandbox host, and the namespace tool used ("" for none).

    With bwrap the host sees a read-only view holding only the interpreter, the libraries and
    the package (no /root, /home, /etc beyond the loader cache), a private /tmp and /proc;
    its network namespace is empty unless ``render``.
    """
    tool, path = namespace_tool()
    if tool == "bwrap":
        argv = [path, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--new-session", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--chdir", "/tmp", "--unsetenv", "PWD"]
        if not render:
            argv.append("--unshare-net")
        for src in readable_paths():
            if os.path.exists(src):
                argv += ["--ro-bind", src, src]
        return argv + python_argv, "bwrap"
    if tool == "unshare":
        argv = [path, "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child",
                "--mount-proc"]
        if not render:
            argv.append("--net")
        return argv + python_argv, "unshare"
    return list(python_argv), ""


def executable_dirs() -> list[str]:
    """The folder of ``sys.executable`` and of every link on the way to the interpreter (a
    venv's ``python`` may point through another venv): the host is started by that name, so
    each hop must be in its view."""
    dirs, path = [], os.path.abspath(sys.executable)
    for _ in range(32):
        dirs.append(os.path.dirname(path))
        if not os.path.islink(path):
            break
        path = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    dirs.append(os.path.dirname(os.path.realpath(sys.executable)))
    return dirs


def readable_paths() -> list[str]:
    """What a policy process may read: the interpreter, its libraries, numpy, bgen."""
    paths = ["/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/localtime",
             os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
             os.path.realpath(sys.exec_prefix), *executable_dirs(), package_root()]
    try:
        import numpy
        paths.append(os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__))))
    except ImportError:
        pass
    seen, unique = set(), []
    for path in paths:
        if path not in seen:
            seen.add(path)
            unique.append(path)
    return unique


# ============================================================================================
# Applying layers inside a policy process (called after fork, before the policy loads)
# ============================================================================================

# Landlock access rights (linux/landlock.h); the handled set depends on the ABI.
_FS_EXECUTE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
_FS_ALL_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
                  5: (1 << 16) - 1}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def no_new_privs() -> None:
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def apply_landlock(read_paths: list[str], render_ports: list[int] | None) -> str:
    """Restrict this process: read-only access beneath ``read_paths``, no other file access,
    no TCP bind/connect (except ``render_ports`` when given); returns a one-line detail.

    Raises OSError when the kernel refuses; returns "" when Landlock is unavailable.
    """
    abi = landlock_abi()
    if abi < 1:
        return ""
    attr = _RulesetAttr(handled_access_fs=_FS_ALL_BY_ABI.get(abi, (1 << 16) - 1))
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        size = 24
    ruleset = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                            ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in read_paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                access = _FS_EXECUTE | _FS_READ_FILE
                if os.path.isdir(path):
                    access |= _FS_READ_DIR
                rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
                if _libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        if render_ports and abi >= 4:
            for port in render_ports:
                rule = _NetPortAttr(allowed_access=_NET_CONNECT_TCP, port=int(port))
                if _libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 2, ctypes.byref(rule), 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule port {port}")
        no_new_privs()
        if _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    what = f"Landlock ABI {abi}: read-only beneath {len(read_paths)} paths, no writes"
    if abi >= 4:
        what += ", TCP only to the renderer ports" if render_ports else ", no TCP"
    if abi >= 6:
        what += ", no signals or abstract sockets outside the sandbox"
    return what


_SCMP_ACT_ALLOW = 0x7FFF0000
_CMP_NE, _CMP_EQ, _CMP_GT, _CMP_MASKED_EQ = 1, 4, 6, 7
_CLONE_THREAD = 0x00010000
_AF_UNIX, _AF_INET, _AF_INET6 = 1, 2, 10

#: Syscalls a policy process never needs (refused with EPERM).
DENIED_SYSCALLS = (
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
    "socketpair", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup",
    "init_module", "finit_module", "delete_module", "kexec_load", "open_by_handle_at",
    "name_to_handle_at", "memfd_create", "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
    "tkill", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "setgroups", "acct", "swapon", "swapoff", "reboot", "sethostname", "setdomainname",
    "mknod", "mknodat", "link", "linkat", "symlink", "symlinkat", "rename", "renameat",
    "renameat2", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat", "chmod", "fchmod",
    "fchmodat", "chown", "fchown", "fchownat", "lchown", "truncate", "bind", "listen",
    "accept", "accept4",
)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def apply_seccomp(render: bool) -> str:
    """Install the policy process's seccomp filter; returns a one-line detail.

    Refused with EPERM: ``DENIED_SYSCALLS``; ``clone`` without CLONE_THREAD (new processes;
    threads stay possible); ``clone3`` with ENOSYS (its flags are behind a pointer, so the C
    library falls back to ``clone``); ``kill``/``tgkill`` aimed at any other process;
    ``socket`` (headless) or ``socket`` of any family but AF_INET/AF_INET6 (``render``); and
    ``connect``/``sendto``/``sendmsg`` headless. Raises OSError when the library is missing or
    the kernel refuses.
    """
    lib = _libseccomp()
    if lib is None:
        raise OSError(errno.ENOENT, "libseccomp.so.2 is not installed")
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp_init")
    eperm = 0x00050000 | errno.EPERM
    pid = os.getpid()

    def rule(name: str, action: int = eperm, *cmps: tuple[int, int, int, int]) -> None:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return                       # not a syscall on this architecture
        array = (_ArgCmp * max(len(cmps), 1))(*[_ArgCmp(*c) for c in cmps])
        code = lib.seccomp_rule_add_array(ctx, action, number, len(cmps), array)
        if code < 0:
            raise OSError(-code, f"seccomp rule for {name}")

    try:
        for name in DENIED_SYSCALLS:
            rule(name)
        rule("clone", eperm, (0, _CMP_MASKED_EQ, _CLONE_THREAD, 0))
        rule("clone3", 0x00050000 | errno.ENOSYS)
        rule("kill", eperm, (0, _CMP_NE, pid, 0))
        rule("tgkill", eperm, (0, _CMP_NE, pid, 0))
        if render:
            for family in range(0, 64):
                if family not in (_AF_INET, _AF_INET6):
                    rule("socket", eperm, (0, _CMP_EQ, family, 0))
            rule("socket", eperm, (0, _CMP_GT, 63, 0))
        else:
            for name in ("socket", "connect", "sendto", "sendmsg", "sendmmsg"):
                rule(name)
        code = lib.seccomp_load(ctx)
        if code < 0:
            raise OSError(-code, "seccomp_load")
    finally:
        lib.seccomp_release(ctx)
    sockets = "sockets only AF_INET/AF_INET6 (rendering)" if render else "no sockets"
    return (f"libseccomp {seccomp_version()}: no execve, fork, ptrace, signals to other "
            f"processes, file creation or removal, {sockets}")


# ============================================================================================
# The report
# ============================================================================================

def _layer(name: str, active: bool, detail: str) -> dict:
    return {"name": name, "active": bool(active), "detail": detail}


def expected_layers(render: bool = False) -> list[dict]:
    """What this machine offers, decided without starting a policy process."""
    tool, why = namespace_tool()
    if tool == "bwrap":
        ns = "bubblewrap: PID, IPC, UTS, mount (read-only view of the interpreter and package)"
    elif tool == "unshare":
        ns = "unshare (root): PID, IPC, UTS, mount"
    else:
        ns = f"none: {why}"
    if tool:
        ns += ", network kept for the renderer" if render else ", network (no interfaces)"
    abi = landlock_abi()
    version = seccomp_version()
    root = os.geteuid() == 0
    return [
        _layer("environment", True, "exec'd with only thread settings and the locale: "
                                    + ", ".join(sorted(HOST_ENV))),
        _layer("namespaces", tool is not None, ns),
        _layer("landlock", abi >= 1, f"ABI {abi}" if abi else
               "the kernel has no Landlock (needs Linux 5.13+ with landlock in lsm=)"),
        _layer("seccomp", version is not None, f"libseccomp {version}" if version else
               "libseccomp.so.2 not found (install the libseccomp2 package)"),
        _layer("rlimits", True, "address space, CPU, file size 0, open files, no core"
                                + ("" if render else ", processes 0")),
        _layer("uid", root, "root: policy processes drop to nobody (65534)" if root else
               f"not root: policy processes keep uid {os.geteuid()}"),
    ]


def isolation_report(render: bool = False, probe: bool = True) -> dict:
    """``{"layers": [{"name", "active", "detail"}], "active": [names], "missing": [names]}``.

    With ``probe`` (default) a policy process is started and asked what actually holds in it
    (seccomp mode, Landlock, network namespace, uid, environment); without, the report says
    what this machine offers. A missing layer is listed in ``missing`` with why in ``detail``.
    """
    layers = expected_layers(render)
    if probe:
        from bgen.runner.worker import probe_worker
        from bgen.runner.episode import EpisodeConfig
        try:
            facts = probe_worker(EpisodeConfig(backend="embedded", render=render))
            applied = facts.get("layers", {})
        except Exception as error:  # a report must not fail: say what went wrong
            applied = {}
            for layer in layers:
                if layer["name"] in ("namespaces", "landlock", "seccomp", "uid"):
                    layer["active"] = False
                    layer["detail"] = f"the probe failed: {error}"
        for layer in layers:
            got = applied.get(layer["name"])
            if isinstance(got, dict):
                layer["active"] = bool(got.get("active"))
                layer["detail"] = str(got.get("detail", layer["detail"]))
    return {"layers": layers, "render": render,
            "active": [layer["name"] for layer in layers if layer["active"]],
            "missing": [layer["name"] for layer in layers if not layer["active"]]}


_CACHED: dict[bool, dict] = {}


def cached_report(render: bool = False) -> dict:
    """``isolation_report(render)`` computed once per process (``GET /health``, the CLIs)."""
    if render not in _CACHED:
        _CACHED[render] = isolation_report(render=render)
    return _CACHED[render]


def report_line(report: dict) -> str:
    """One line for the CLIs: "isolation: environment, namespaces, ... (missing: x)"."""
    line = "isolation: " + (", ".join(report["active"]) or "none")
    if report["missing"]:
        line += " (missing: " + ", ".join(report["missing"]) + ")"
    return line


def main(argv=None) -> int:
    import argparse
    import json
    parser = argparse.ArgumentParser(prog="python -m bgen.runner.isolation",
                                     description="Which OS layers protect policy processes here")
    parser.add_argument("--render", action="store_true", help="the layers kept with --render")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = isolation_report(render=args.render)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(report_line(report))
    for layer in report["layers"]:
        mark = "active " if layer["active"] else "MISSING"
        print(f"  {mark} {layer['name']:<12} {layer['detail']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
