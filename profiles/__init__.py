"""What is built on the published profiles: publishing them, activating them, serving them.

* ``profiles.publishing``: write-audit-publish of the audited marts, rollback, read-only access;
* ``profiles.activation``: the segment language, the suppression chain, exports and the
  hashing rules of ad platforms;
* ``profiles.api``: the read-only HTTP API marketing tools pull from;
* ``profiles.traits``: traits computed inside the dbt build (the ticket classifier);
* ``profiles.survivorship``: the golden-record rules handed to dbt.

Nothing here imports ``cdp``: paths and configuration files come in as arguments.
"""
