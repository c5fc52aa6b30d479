"""Pure file handling (no database, no web): readers, header mapping, templates, reports."""
