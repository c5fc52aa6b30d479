"""Custom fields: organization-defined, typed contact attributes."""
