"""``python -m kontak.cli``: the same as the ``kontak`` command."""

from kontak.cli.main import app

app()
