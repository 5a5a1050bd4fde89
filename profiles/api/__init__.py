"""Read-only HTTP API over the published warehouse for marketing tools that pull.

Segments, their members after the suppression chain (keyset pagination on ``profile_id``, so
paging is stable and complete), changes since an export, and profile lookup by id or by email /
phone. Emails and phones arrive in a POST body - never in a URL that lands in access logs - and
are normalised and SHA-256-hashed on the way in; the lookup compares hashes against the identity
graph. A URL that carries one anyway is refused, requests are logged by route template, never by
URL, and validation errors name the field without echoing its value. No endpoint writes: the
published file is attached read-only.

One read-only connection per process, re-opened when a publication swaps the file (its inode,
size or mtime changes); per-publication results (a segment's members, identifier hashes) are
materialised once in memory and dropped with the connection.
"""
