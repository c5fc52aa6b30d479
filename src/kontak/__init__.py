"""Kontak: the contacts service of an omnichannel customer-service platform."""

__version__ = "0.1.0"
