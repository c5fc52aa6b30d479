"""Contacts: the heart of Kontak."""
