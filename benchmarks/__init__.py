"""Performance suites with their recorded results (``RESULTS.md``); not part of the tests."""
