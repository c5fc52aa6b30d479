"""Child processes that end with their parent."""

from __future__ import annotations

import os
import signal


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: send this process ``sig`` when its parent dies (a killed server leaves no
    server process, parser or parsing worker behind). Not inherited through fork: each
    child asks for itself."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, sig)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
