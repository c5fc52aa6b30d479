"""Import jobs: a file's contacts checked whole, then written whole or not at all."""
