"""Tags: labels on contacts, matched case-insensitively and created on first use."""
