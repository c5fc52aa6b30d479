"""The HTTP face of Kontak: the JSON API (and, later, the server-rendered pages)."""
