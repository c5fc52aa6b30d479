"""The ``kontak`` command line: one module per noun."""
