"""The serving store: what the API answers in milliseconds, built from each publication.

A SQLite file per publication (``warehouse/serving/<run id>.sqlite``), written from the
publication's file before that file is swapped in, and written again only when the publication
itself is changed in place (an erasure's scrub): a reader that opened publication R reads R's
store, so every answer stays consistent with the publication it came from.
:mod:`profiles.serving.store` builds and reads it.
"""
