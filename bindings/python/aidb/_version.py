"""The package's version: the library's (CMakeLists.txt's project VERSION).
pyproject.toml reads it from here; tests/packaging/run_bindings.sh checks it
against CMakeLists.txt, and the tests against the loaded library."""
__version__ = "0.2.0"
