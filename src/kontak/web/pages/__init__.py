"""Server-rendered pages (Jinja2), in English and Bahasa Indonesia."""
