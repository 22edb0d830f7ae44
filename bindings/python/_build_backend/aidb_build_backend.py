"""PEP 517 backend of the Python package: scikit-build-core, plus an sdist
that carries libaidb's sources.

The library's CMake project is the repository root, two directories above
this package, and scikit-build-core only puts files of the package's own
directory into an sdist. build_sdist therefore copies what CMake needs
(CMakeLists.txt, cmake/, include/, pkgconfig/, src/) into _aidb_src/ for the
duration of the call; CMakeLists.txt here builds from _aidb_src/ when it
exists, else from ../.. (a checkout). Everything else is scikit-build-core's.
"""
import shutil
from pathlib import Path

from scikit_build_core import build as _skb
from scikit_build_core.build import *  # noqa: F401,F403 (build_wheel, get_requires_for_*, ...)

_HERE = Path(__file__).resolve().parent.parent
_STAGE = _HERE / "_aidb_src"
_PARTS = ("CMakeLists.txt", "cmake", "include", "pkgconfig", "src")


def build_sdist(sdist_directory, config_settings=None):
    root = _HERE.parent.parent
    if _STAGE.exists() or not (root / "include" / "aidb.h.in").is_file():
        # Already staged (an sdist rebuilt from an sdist), or not in a checkout.
        return _skb.build_sdist(sdist_directory, config_settings)
    try:
        _STAGE.mkdir()
        for part in _PARTS:
            src = root / part
            if src.is_dir():
                shutil.copytree(src, _STAGE / part,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, _STAGE / part)
        return _skb.build_sdist(sdist_directory, config_settings)
    finally:
        shutil.rmtree(_STAGE, ignore_errors=True)

