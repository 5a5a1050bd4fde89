"""Activation: segments (a small rule language or dbt tables), the suppression chain every
audience passes, exports to files and the identifier hashing ad platforms expect.

Modules by job, imported in this order (no cycles): ``syntax`` (allow-listed fields and the
tree), ``lexer``, ``parser``, ``compiler``, ``segment``, ``hot_events`` (what the API received
since the publication), ``suppression``, ``config`` (``segments.yml``), ``offers``
(``offers.yml``, next best offer), ``discovery``, ``hashing``, ``export``.
"""
