"""Keep the garbage collector's full passes off a long-running process's request path."""

import gc


def freeze_startup_objects() -> None:
    """Exempt everything alive after start-up from later collections (gc.freeze).

    Modules, table definitions and compiled queries loaded at start-up are some 80,000
    objects that live as long as the process. A full collection walks them all (15-20 ms
    on two cores), and whichever request happens to trigger one pays for it in its tail
    latency. Frozen, they are never walked again.
    """
    gc.collect()
    gc.freeze()
