"""Data-subject rights (GDPR Art. 15, 17, 19): find everything held about a person, forget them
everywhere, and keep them forgotten.

``identifiers`` reads requests and hashes them; ``register`` is what stays after an erasure
(hashed identifiers, counts); ``locate`` finds a person's records; ``forget`` takes them out of
every file of the data directory; ``access`` writes what is held about them.
"""
