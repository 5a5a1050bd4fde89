"""HTTP API over the published warehouse for marketing tools that pull, and real-time events in.

Segments, their members after the suppression chain (keyset pagination on ``profile_id``, so
paging is stable and complete), changes since an export, profile lookup by id or by email /
phone, and a profile's next best offers. ``POST /events`` (a write key, apart from the read
keys) lands unsubscribes, consent changes, offer deliveries and responses for the next run;
until then the chain reads them as its hot list. Emails and phones arrive in a POST body -
never in a URL that lands in access logs - and are normalised and SHA-256-hashed on the way
in; the lookup compares hashes against the identity graph. A URL that carries one anyway is
refused, requests are logged by route template, never by URL, and validation errors name the
field without echoing its value. Nothing writes the publication: it is attached read-only;
events go to the landing area.

One read-only connection per process, re-opened when a publication swaps the file (its inode,
size or mtime changes); per-publication results (a segment's members, identifier hashes) are
materialised once in memory and dropped with the connection.
"""
