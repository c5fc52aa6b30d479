"""A compiled copy of the parsing child's hot modules (mypyc), run only while it matches the source.

``python -m kontak.native`` (``make native``, a step of run, test and bench) copies the package to
``<prefix>/kontak-native/<source hash>/`` and compiles the modules that handle every row
of an import there. The runner starts the parsing child on that copy when one exists for
the source as it is now; otherwise, or with ``KONTAK_COMPILED_PARSER=false``, on the
package itself. The copy is never imported by the server, so an edited module is never
shadowed by a stale compiled one: its hash no longer matches and plain Python runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# What the parsing child runs for every row: reading, checking, normalizing, staging.
HOT_MODULES = (
    "kontak/ids.py",
    "kontak/files/cells.py",
    "kontak/files/table.py",
    "kontak/files/csv_reader.py",
    "kontak/contact/normalize.py",
    "kontak/import_job/checks.py",
    "kontak/import_job/staging.py",
)
# mypyc type-checks what it compiles; the project's own mypy settings (pyproject.toml)
# are not in the copy, so the ones it needs are written beside it.
_MYPY_INI = """\
[mypy]
python_version = 3.11
plugins = pydantic.mypy
ignore_missing_imports = True
"""


KEPT_COPIES = 4  # compiled copies kept, this source's included


def root() -> Path:
    """Where compiled copies live: beside the installed interpreter's environment."""
    return Path(sys.prefix) / "kontak-native"


def source_hash(package: Path = PACKAGE) -> str:
    """A digest of every source and data file of the package (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(package)):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def _source_files(package: Path) -> list[Path]:
    return [
        p
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".so"}
    ]


def compiled_copy(package: Path = PACKAGE, *, under: Path | None = None) -> Path | None:
    """The folder to put first on the parsing child's path, or None to run plain Python."""
    folder = (under or root()) / source_hash(package)
    return folder if (folder / "kontak").is_dir() else None


def is_compiled() -> bool:
    """True when this process runs the compiled modules (the parsing child tells its log)."""
    from kontak.import_job import checks

    return Path(checks.__file__ or "").suffix != ".py"


def build(package: Path = PACKAGE, *, under: Path | None = None) -> Path:
    """Compile a copy of ``package`` for its current source; returns its folder. A copy
    that exists already is kept; of the copies of other sources, the newest
    ``KEPT_COPIES - 1`` are kept (see :func:`prune`)."""
    base = under or root()
    digest = source_hash(package)
    target = base / digest
    if (target / "kontak").is_dir():
        return target
    base.mkdir(parents=True, exist_ok=True)
    work = base / f"{digest}.building-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(package, work / "kontak", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    (work / "mypy.ini").write_text(_MYPY_INI, encoding="utf-8")
    try:
        subprocess.run(
            [sys.executable, "-m", "mypyc", "--config-file", "mypy.ini", *HOT_MODULES],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "MYPYC_OPT_LEVEL": "3"},
        )
        missing = [m for m in HOT_MODULES if not list((work / m).parent.glob(_so_glob(m)))]
        if missing:
            raise RuntimeError(f"mypyc built no extension for {', '.join(missing)}")
        shutil.rmtree(work / "build")
        shutil.rmtree(work / ".mypy_cache", ignore_errors=True)
        (work / "mypy.ini").unlink()
        prune(base, keep=KEPT_COPIES - 1)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def prune(base: Path, *, keep: int) -> None:
    """Remove all but the ``keep`` newest copies under ``base`` (builds in progress stay).

    A few are kept so that two versions of the source can be compared: with one copy,
    building the second removed the first, whose imports then ran plain Python, ~1.3x
    slower (session 32 took that for a difference between the versions)."""
    copies = [p for p in base.iterdir() if p.is_dir() and ".building-" not in p.name]
    copies.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in copies[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _so_glob(module: str) -> str:
    return Path(module).stem + ".*.so"


def main() -> int:
    """Build the copy; exit 1 (imports then run plain Python) when it cannot be."""
    try:
        import mypyc  # noqa: F401
    except ImportError:
        sys.stderr.write("mypyc (part of mypy) is not installed: imports run plain Python\n")
        return 1
    try:
        folder = build()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        sys.stderr.write(f"the parser was not compiled ({exc}): imports run plain Python\n")
        return 1
    sys.stderr.write(f"compiled parser: {folder}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
