"""Ship bgen to machines without a network: ``dist/bgen.pyz`` and an offline wheelhouse.

``python -m bgen.pack [--output PATH]``
    builds one zip application (stdlib ``zipapp``) holding bgen, ``bgen_server.py`` and the
    installed distributions of bgen's runtime dependencies (numpy, websockets: their files as
    listed by ``importlib.metadata``), for this machine's Python version and platform. Its
    ``__main__.py`` is ``bgen/pack/bootstrap.py``: it unpacks everything once into a per-user
    cache and runs ``bgen.__main__.main``. Built from what is installed, so it needs no network.

``python -m bgen.pack --wheelhouse DIR [--platform TAG --python-version X.Y] [--find-links DIR]``
    writes bgen's wheel (``pip wheel <source tree> --no-deps``) and its dependencies' wheels
    (``pip download --only-binary :all:``) to DIR; ``pip install --no-index --find-links DIR bgen``
    then installs without a network.

Why zipapp and not shiv or pex: both build their archive by running ``pip install`` into a
staging folder, which needs the registry (or a wheelhouse) at build time and a packer installed
beside bgen; building from the distributions already installed needs neither, and the
unpack-on-first-run step they would provide for numpy's compiled extensions is the 150 lines of
``bootstrap.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipapp
import zipfile
from pathlib import Path, PurePosixPath

import bgen
from bgen.pack import bootstrap

PROG = "python -m bgen.pack"
DEFAULT_OUTPUT = Path("dist") / "bgen.pyz"
INTERPRETER = "/usr/bin/env python3"
EXIT_USAGE = 2
EXIT_DOWNLOAD = 3           # the dependency wheels could not be fetched (registry unreachable?)
SKIPPED_DIRS = ("__pycache__", "tests")      # never needed at run time


class PackError(Exception):
    """A build that cannot go on; the message is one line for the user."""


# ---------------------------------------------------------------------------------------------
# What goes into the archive


def source_tree() -> Path | None:
    """The checkout bgen is imported from (the folder holding setup.cfg), or None when installed."""
    root = Path(bgen.__file__).resolve().parent.parent
    return root if (root / "setup.cfg").is_file() and (root / "bgen_server.py").is_file() else None


def runtime_requirements() -> list[str]:
    """bgen's runtime requirements as written (``["numpy>=1.22", "websockets>=12"]``).

    From ``setup.cfg`` in a checkout, else from the installed distribution's metadata.
    Raises PackError when neither is available.
    """
    root = source_tree()
    if root is not None:
        import configparser
        config = configparser.ConfigParser()
        config.read(root / "setup.cfg", encoding="utf-8")
        return [line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()]
    try:
        return [r for r in importlib.metadata.requires("bgen") or [] if ";" not in r]
    except importlib.metadata.PackageNotFoundError:
        raise PackError("cannot find bgen's requirements: neither a source tree (setup.cfg) "
                        "nor an installed bgen distribution") from None


def requirement_name(requirement: str) -> str:
    """``"numpy>=1.22"`` -> ``"numpy"`` (PEP 508 name, before any version or marker)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise PackError(f"cannot read the requirement {requirement!r}")
    return match.group(1)


def dependency_closure(names: list[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions of ``names`` and, recursively, their unconditional requirements.

    Requirements with an environment marker (extras, other platforms) are left out.
    Raises PackError naming a requirement that is not installed.
    """
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise PackError(f"{name} is not installed in this Python ({sys.executable}); install "
                            "bgen's dependencies first: python -m pip install .") from None
        found[key] = dist
        pending += [requirement_name(r) for r in dist.requires or [] if ";" not in r]
    return [found[k] for k in sorted(found)]


def _wanted(relative: PurePosixPath) -> bool:
    return (relative.parts[0] != ".." and relative.suffix != ".pyc"
            and not any(part in SKIPPED_DIRS for part in relative.parts[:-1]))


def distribution_files(dist: importlib.metadata.Distribution) -> dict[str, Path]:
    """``{archive name: file on disk}`` of an installed distribution, run-time files only.

    Scripts installed outside site-packages (``../../bin/f2py``), bytecode and test folders are
    left out; everything else its RECORD lists (modules, compiled extensions, bundled shared
    libraries such as ``numpy.libs/``, the ``.dist-info`` folder) is kept.
    """
    if dist.files is None:
        raise PackError(f"{dist.metadata['Name']} has no file list (RECORD); reinstall it with pip")
    files = {}
    for entry in dist.files:
        relative = PurePosixPath(str(entry))
        path = Path(entry.locate())
        if _wanted(relative) and path.is_file():
            files[str(relative)] = path
    return files


def bgen_files() -> dict[str, Path]:
    """``{archive name: file}`` of bgen itself: the ``bgen`` package and ``bgen_server.py``."""
    package = Path(bgen.__file__).resolve().parent
    files = {}
    for path in sorted(package.rglob("*")):
        relative = PurePosixPath("bgen", *path.relative_to(package).parts)
        if path.is_file() and _wanted(relative):
            files[str(relative)] = path
    spec = importlib.util.find_spec("bgen_server")
    if spec is None or not spec.origin:
        raise PackError("cannot find bgen_server.py beside the bgen package")
    files["bgen_server.py"] = Path(spec.origin)
    return files


def payload_files() -> dict[str, Path]:
    """Every file of the payload: bgen, bgen_server.py, the runtime dependencies' distributions."""
    files = bgen_files()
    for dist in dependency_closure([requirement_name(r) for r in runtime_requirements()]):
        files.update(distribution_files(dist))
    return dict(sorted(files.items()))


def content_hash(files: dict[str, Path]) -> str:
    """sha256 over the sorted names and bytes: the cache folder changes whenever a file does."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(files[name].read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The zip application


def build_pyz(output: Path = DEFAULT_OUTPUT) -> dict:
    """Write ``output`` (replaced atomically); return the manifest stored in it.

    Manifest: ``{"version", "sha256", "interpreter": {"implementation", "python", "platform"},
    "built_at", "files"}``. Raises PackError when a dependency is missing or ``output`` cannot
    be written.
    """
    files = payload_files()
    manifest = {"version": bgen.__version__, "sha256": content_hash(files),
                "interpreter": bootstrap.interpreter_tag(),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": len(files)}
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PackError(f"cannot create {output.parent}: {error.strerror or error}") from None
    with tempfile.TemporaryDirectory(prefix="bgen-pack-") as staging_dir:
        staging = Path(staging_dir)
        for name, path in files.items():
            target = staging.joinpath(bootstrap.PAYLOAD, *PurePosixPath(name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        shutil.copy2(Path(bootstrap.__file__), staging / "__main__.py")
        (staging / bootstrap.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        partial = output.with_name(output.name + ".partial")
        try:
            zipapp.create_archive(staging, partial, interpreter=INTERPRETER, compressed=True)
            os.replace(partial, output)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise PackError(f"cannot write {output}: {error.strerror or error}") from None
    return manifest


def pyz_listing(path: Path) -> list[str]:
    """The member names of a built archive (for checks and the build summary)."""
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


# ---------------------------------------------------------------------------------------------
# The wheelhouse


def _pip(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _last_lines(text: str, count: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-count:])


def _can_build_offline() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("setuptools", "wheel"))


def build_wheelhouse(folder: Path, *, platform: str | None = None, python_version: str | None = None,
                     find_links: list[str] = ()) -> list[Path]:
    """Fill ``folder`` with bgen's wheel and its dependencies' wheels; return the wheels in it.

    bgen's wheel comes from the source tree (``pip wheel --no-deps``; without build isolation
    when setuptools and wheel are installed, so no network is needed for it). The dependencies
    come from ``pip download --only-binary :all:``: from the registry, or, with ``find_links``,
    only from those folders (no index). ``platform`` (a wheel platform tag such as
    ``manylinux2014_x86_64``) and ``python_version`` (``"3.11"``) choose another target than
    this machine. Raises PackError (``.exit_code`` 3 when the download failed) with pip's last
    lines.
    """
    root = source_tree()
    if root is None:
        raise PackError("the wheelhouse is built from a source checkout (a folder with setup.cfg); "
                        "run it from the cloned repository")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    build = ["wheel", str(root), "--no-deps", "--wheel-dir", str(folder)]
    if _can_build_offline():
        build.append("--no-build-isolation")
    with tempfile.TemporaryDirectory(prefix="bgen-wheel-") as scratch:
        # pip builds in the source tree's build/ folder; keep the checkout clean by copying it.
        tree = Path(scratch) / "bgen-src"
        shutil.copytree(root, tree, ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "runs", "*.egg-info", "__pycache__", "*.pyc"))
        build[1] = str(tree)
        done = _pip(build)
    if done.returncode != 0:
        hint = ("" if "--no-build-isolation" in build else
                " (pip fetched setuptools and wheel from the package index for the build; "
                "install both here to build bgen's wheel without a network)")
        raise PackError(f"pip wheel of bgen failed{hint}: {_last_lines(done.stdout)}")
    download = ["download", "--only-binary", ":all:", "--dest", str(folder), *runtime_requirements()]
    if platform:
        download += ["--platform", platform]
    if python_version:
        download += ["--python-version", python_version]
    if find_links:
        download.append("--no-index")
        for link in find_links:
            download += ["--find-links", str(link)]
    done = _pip(download)
    if done.returncode != 0:
        error = PackError(f"cannot download the dependency wheels ({', '.join(runtime_requirements())}): "
                          f"{_last_lines(done.stdout)}")
        error.exit_code = EXIT_DOWNLOAD
        raise error
    return sorted(folder.glob("*.whl"))


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Build dist/bgen.pyz (one file: bgen and its dependencies for this "
                               "Python and platform) or, with --wheelhouse, an offline wheelhouse.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="where to write the zip application (default dist/bgen.pyz)")
    parser.add_argument("--wheelhouse", type=Path, default=None, metavar="DIR",
                        help="write bgen's wheel and its dependencies' wheels to DIR instead of a pyz")
    parser.add_argument("--platform", default=None, metavar="TAG",
                        help="wheelhouse only: wheel platform tag of the target (default this machine)")
    parser.add_argument("--python-version", default=None, metavar="X.Y",
                        help="wheelhouse only: Python version of the target (default this Python)")
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR",
                        help="wheelhouse only: take the dependency wheels from DIR (repeatable) "
                             "instead of the package index")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    wheelhouse_only = [flag for flag, value in (("--platform", args.platform),
                                                ("--python-version", args.python_version),
                                                ("--find-links", args.find_links)) if value]
    if args.wheelhouse is None and wheelhouse_only:
        parser.error(f"{', '.join(wheelhouse_only)} only apply with --wheelhouse DIR")
    started = time.monotonic()
    try:
        if args.wheelhouse is not None:
            wheels = build_wheelhouse(args.wheelhouse, platform=args.platform,
                                      python_version=args.python_version, find_links=args.find_links)
            for wheel in wheels:
                print(f"  {wheel.name}")
            print(f"wheelhouse {args.wheelhouse}: {len(wheels)} wheels in {time.monotonic() - started:.1f} s; "
                  f"install with: pip install --no-index --find-links {args.wheelhouse} bgen")
            return 0
        manifest = build_pyz(args.output)
    except PackError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", EXIT_USAGE)
    size = args.output.stat().st_size
    print(f"{args.output}: {size / 1e6:.1f} MB, {manifest['files']} files, bgen {manifest['version']} "
          f"for {bootstrap.describe(manifest['interpreter'])}, built in {time.monotonic() - started:.1f} s; "
          f"run it with: python {args.output} --version")
    return 0
