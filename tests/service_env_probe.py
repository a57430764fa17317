"""Import what a service's image runs, with the service's own interpreter, and say what broke.

Run by tests/test_service_environments.py as
    SERVICE_VENV/bin/python -I service_env_probe.py SERVICE_DIR REPORT.json TARGET...
`-I` keeps the caller's sys.path, PYTHONPATH and user site out; SERVICE_DIR is put first
on sys.path, as the image's WORKDIR is. A TARGET is `package:NAME` (NAME and every module
under it), `module:NAME`, or `file:PATH` (executed, as gunicorn reads its config file).
This file runs under the service's interpreter only: it imports nothing but the stdlib.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import runpy
import sys
import traceback


def _module_name(filename: str) -> str:
    """`mp3common.metrics` for .../site-packages/mp3common/metrics.py; else the path."""
    for entry in sorted((p for p in sys.path if p), key=len, reverse=True):
        root = os.path.join(os.path.abspath(entry), "")
        if filename.startswith(root):
            dotted = filename[len(root) :].removesuffix(".py").replace(os.sep, ".")
            return dotted.removesuffix(".__init__")
    return filename


def _failure(target: str, exc: BaseException) -> dict:
    """What failed, the package missing if that is why, and the line that asked for it."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<") and frame.filename != __file__
    ]
    culprit = frames[-1] if frames else None
    return {
        "target": target,
        "error": type(exc).__name__,
        "message": str(exc),
        "missing": exc.name if isinstance(exc, ModuleNotFoundError) else None,
        "imported_by": _module_name(culprit.filename) if culprit else None,
        "line": f"{culprit.filename}:{culprit.lineno}: {culprit.line}" if culprit else None,
    }


def _load(target: str, failures: list[dict]) -> None:
    kind, _, name = target.partition(":")
    try:
        if kind == "file":
            runpy.run_path(name)
            return
        module = importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: server.py exits on bad settings
        failures.append(_failure(name, exc))
        return
    if kind == "package":
        # Modules only a CLI or a later code path imports must import in the image as well.
        for info in pkgutil.walk_packages(module.__path__, f"{name}.", onerror=lambda _: None):
            _load(f"module:{info.name}", failures)


def main(service_dir: str, report_path: str, *targets: str) -> None:
    sys.path.insert(0, service_dir)
    failures: list[dict] = []
    for target in targets:
        _load(target, failures)
    loaded = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
    files = sorted({path for path in loaded if isinstance(path, str)})
    mp3common = sys.modules.get("mp3common")
    report = {
        "prefix": sys.prefix,
        "path": sys.path,
        "files": files,
        "mp3common": getattr(mp3common, "__file__", None),
        "failures": failures,
    }
    with open(report_path, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
