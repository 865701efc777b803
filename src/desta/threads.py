"""CPU thread count for torch in desta's long-running commands (`desta serve`, `desta data
generate`).

torch starts one OpenMP thread per core. On a small machine that other processes share, those
threads wait for each other whenever one of them is descheduled: measured on a 2-core machine
shared with other jobs, `data generate` ran 10x slower with 2 threads than with 1 once the
machine was busy (and no faster when it was not), and the server gained nothing reliable from
2 (docs/serving.md, docs/data/generation.md). So these commands choose the count themselves:
``--threads N`` when given, else ``$OMP_NUM_THREADS`` when the user set it, else
:data:`DEFAULT_THREADS`.
"""

from __future__ import annotations

import logging
import os

from desta.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_THREADS = 1
"""torch intra-op threads when neither ``--threads`` nor ``$OMP_NUM_THREADS`` says otherwise:
one, the fastest setting measured on a shared 2-core machine and the one that degrades least
when the machine is busy. On a dedicated many-core machine pass ``--threads`` (e.g. the core
count) for a faster prefill."""


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count for this process and return it.

    Args:
        threads: the count asked for on the command line; None = ``$OMP_NUM_THREADS`` if set,
            else :data:`DEFAULT_THREADS`.

    Raises:
        ConfigError: `threads` (or ``$OMP_NUM_THREADS``) is not a positive integer.
    """
    import torch

    source = "--threads"
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if env:
            source = "$OMP_NUM_THREADS"
            try:
                threads = int(env)
            except ValueError:
                raise ConfigError(f"$OMP_NUM_THREADS={env!r} is not an integer") from None
        else:
            source, threads = "default", DEFAULT_THREADS
    if threads < 1:
        raise ConfigError(f"{source} must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    logger.info("torch CPU threads: %d (%s)", threads, source)
    return threads
