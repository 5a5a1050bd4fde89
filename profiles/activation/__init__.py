"""Activation: segments (a small rule language or dbt tables), the suppression chain every
audience passes, exports to files and the identifier hashing ad platforms expect.

Modules by job, imported in this order (no cycles): ``syntax`` (allow-listed fields and the
tree), ``lexer``, ``parser``, ``compiler``, ``segment``, ``suppression``, ``config``
(``segments.yml``), ``discovery``, ``hashing``, ``export``.
"""
