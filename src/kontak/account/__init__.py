"""Accounts: organizations, users, roles and API tokens."""
