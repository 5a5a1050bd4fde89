"""What every stage shares and no stage owns: the vocabulary, the data directory's layout,
the configuration error format and file locks.

Library packages (``ingest``, ``identity``, ``quality``, ``profiles``) import from here and
never from ``cdp``; ``cdp`` is the composition root that resolves paths and settings once and
passes them down as arguments.
"""
