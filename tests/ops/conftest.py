"""The ops tests reuse the daemon fixtures of tests/server (the Daemon class
that runs the real aidbd), loaded under another module name so that pytest
does not see two modules called conftest."""
import importlib.util
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "aidb_server_fixtures", os.path.join(_HERE, "..", "server", "conftest.py"))
server_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(server_fixtures)
