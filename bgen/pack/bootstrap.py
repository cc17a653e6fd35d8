"""The ``__main__.py`` of ``bgen.pyz``: unpack once into a per-user cache, then run bgen.

This file is copied verbatim into the archive by ``python -m bgen.pack``; it uses the standard
library only and avoids syntax newer than Python 3.6, so that an older interpreter still gets
the one-line explanation below instead of a SyntaxError.

Archive layout (written by ``bgen.pack.build_pyz``)::

    bgen.pyz
    ├── __main__.py        this file
    ├── bgen_pyz.json      manifest: version, content hash, the interpreter it was built for
    └── payload/           bgen/, bgen_server.py, numpy/, numpy.libs/, websockets/, *.dist-info/

First start: ``payload/`` is extracted into a fresh temporary folder beside the cache folder,
marked complete, then renamed into place with one ``rename(2)``; two first starts at once
each extract, one rename wins and the other discards its copy, so the folder is either absent
or complete. Later starts find the folder and only put it on ``sys.path``. Everything is
unpacked (not only numpy's compiled extensions), so ``bgen`` is an ordinary package folder on
disk and ``bgen.__file__`` can be handed to child processes as a PYTHONPATH entry.

Cache folder: ``$BGEN_PYZ_CACHE/<version>-<hash>`` when that variable is set, else
``$XDG_CACHE_HOME/bgen/pyz/<version>-<hash>`` (default ``~/.cache/bgen/pyz/...``); on Windows
``%LOCALAPPDATA%\\bgen\\pyz\\...``. A new build has a new hash, hence a new folder; old ones
may be deleted at any time when no bgen.pyz is running from them.
"""

import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
import zipfile

MANIFEST = "bgen_pyz.json"
PAYLOAD = "payload/"
CACHE_ENV = "BGEN_PYZ_CACHE"
COMPLETE = ".complete"          # written last inside the temporary folder, before the rename
PROG = "bgen.pyz"
EXIT_USAGE = 2
ABANDONED_S = 3600.0            # a temporary unpack folder this old was left by a killed start


class PyzError(Exception):
    """A start that cannot go on; the message is one line for the user."""


def interpreter_tag():
    """What compiled extensions depend on: implementation, ``X.Y`` version, platform.

    ``{"implementation": "cpython", "python": "3.11", "platform": "linux-x86_64"}``
    (``sysconfig.get_platform()``). Stored in the manifest at build time, compared at start.
    """
    return {"implementation": sys.implementation.name,
            "python": "%d.%d" % sys.version_info[:2],
            "platform": sysconfig.get_platform()}


def describe(tag):
    """``"cpython 3.11 on linux-x86_64"``."""
    return "%s %s on %s" % (tag["implementation"], tag["python"], tag["platform"])


def interpreter_mismatch(built_for, running):
    """None when ``running`` can load the archive's extensions, else a one-line explanation."""
    keys = ("implementation", "python", "platform")
    if all(built_for.get(k) == running.get(k) for k in keys):
        return None
    return ("this bgen.pyz was built for %s, but this Python (%s) is %s: run it with a matching "
            "Python, or build one on this machine with `python -m bgen.pack`"
            % (describe(built_for), sys.executable or "python", describe(running)))


def cache_root(environ):
    """The folder holding unpacked versions (see the module docstring for the order).

    Raises PyzError when no per-user folder can be named (no HOME and no override).
    """
    override = environ.get(CACHE_ENV)
    if override:
        return os.path.abspath(os.path.expanduser(override))
    if os.name == "nt" and environ.get("LOCALAPPDATA"):
        return os.path.join(environ["LOCALAPPDATA"], "bgen", "pyz")
    base = environ.get("XDG_CACHE_HOME")
    if not base:
        home = environ.get("HOME") or environ.get("USERPROFILE")
        if not home:
            raise PyzError("cannot choose a cache folder: set %s (or HOME) to a writable folder" % CACHE_ENV)
        base = os.path.join(home, ".cache")
    return os.path.join(base, "bgen", "pyz")


def cache_name(manifest):
    """``"<version>-<first 16 hex digits of the content hash>"``."""
    return "%s-%s" % (manifest["version"], manifest["sha256"][:16])


def _extract_payload(archive, folder):
    """Write every ``payload/`` member of ``archive`` (a ZipFile) under ``folder``, modes kept."""
    for info in archive.infolist():
        if not info.filename.startswith(PAYLOAD) or info.filename == PAYLOAD:
            continue
        relative = info.filename[len(PAYLOAD):]
        parts = relative.split("/")
        if relative.startswith("/") or ".." in parts:
            raise PyzError("corrupt archive: member %r leaves the payload folder" % info.filename)
        target = os.path.join(folder, *parts)
        if info.is_dir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with archive.open(info) as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(target, mode | 0o400)


def unpack(archive_path, manifest, root):
    """The unpacked payload folder of ``archive_path`` under ``root``, extracting it if needed.

    Safe against concurrent first starts (see the module docstring). Raises PyzError when the
    cache folder cannot be written, naming the folder and the variable that moves it.
    """
    target = os.path.join(root, cache_name(manifest))
    if os.path.isfile(os.path.join(target, COMPLETE)):
        return target
    try:
        os.makedirs(root, exist_ok=True)
        remove_abandoned(root, time.time())
        staging = tempfile.mkdtemp(prefix="." + cache_name(manifest) + ".", dir=root)
    except OSError as error:
        raise PyzError("cannot write the unpack cache %s (%s); set %s to a writable folder"
                       % (root, error.strerror or error, CACHE_ENV))
    try:
        with zipfile.ZipFile(archive_path) as archive:
            _extract_payload(archive, staging)
        os.chmod(staging, 0o755)                     # readable by a worker that dropped to another uid
        with open(os.path.join(staging, COMPLETE), "w") as marker:
            marker.write(manifest["sha256"] + "\n")
        _move_into_place(staging, target)
    except OSError as error:
        raise PyzError("cannot unpack into %s (%s); set %s to a writable folder"
                       % (root, error.strerror or error, CACHE_ENV))
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return target


def remove_abandoned(root, now):
    """Delete temporary folders of first starts that were killed while unpacking.

    A temporary folder (``.<name>.<random>``, ``.stale.<random>``) untouched for ABANDONED_S
    seconds belongs to no running start: extraction takes seconds.
    """
    for entry in os.listdir(root):
        path = os.path.join(root, entry)
        if not entry.startswith(".") or not os.path.isdir(path):
            continue
        try:
            if now - os.stat(path).st_mtime > ABANDONED_S:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass                                      # removed meanwhile by another start


def _move_into_place(staging, target):
    """Rename ``staging`` to ``target``; a complete ``target`` already there wins."""
    try:
        os.rename(staging, target)
        return
    except OSError:
        if os.path.isfile(os.path.join(target, COMPLETE)):
            return                                   # another first start finished first
    # ``target`` exists without its marker: left by an interrupted older layout; set it aside.
    aside = tempfile.mkdtemp(prefix=".stale.", dir=os.path.dirname(target))
    os.rename(target, os.path.join(aside, "old"))
    os.rename(staging, target)
    shutil.rmtree(aside, ignore_errors=True)


def archive_path():
    """The path of the running ``bgen.pyz`` (this file's folder, as zipimport names it)."""
    return os.path.dirname(os.path.abspath(__file__))


def read_manifest(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(MANIFEST).decode("utf-8"))


def start(environ):
    """Check the interpreter, unpack, put the payload first on ``sys.path``; return its folder."""
    path = archive_path()
    manifest = read_manifest(path)
    problem = interpreter_mismatch(manifest["interpreter"], interpreter_tag())
    if problem:
        raise PyzError(problem)
    folder = unpack(path, manifest, cache_root(environ))
    archive = os.path.normcase(os.path.abspath(path))
    sys.path[:] = [folder] + [p for p in sys.path if os.path.normcase(os.path.abspath(p or ".")) != archive]
    return folder


def main():
    try:
        start(os.environ)
    except PyzError as error:
        sys.stderr.write("%s: %s\n" % (PROG, error))
        return EXIT_USAGE
    from bgen.__main__ import main as bgen_main
    return bgen_main(sys.argv[1:], prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
