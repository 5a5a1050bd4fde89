"""Constrained connected components over rule and Splink edges.

Plain connected components let one wrong edge fuse two people (and one shared household
e-mail fuse two families).  Instead edges are applied strongest first (must-links, issued
identifiers, soft identifiers between matching people, Splink edges by falling probability,
then attachments of records without person data) into a union-find, and an edge is *refused*
when the merge would

* join two different authoritative values of a strong identifier (identity.yml
  ``strong_identifiers``: the CRM's customer numbers, a KYC-checked national id, ...),
* (edges resting on a shared contact point: a soft identifier, or a Splink match whose two
  sides share an e-mail, phone or full address) join people whose first names clearly
  differ, or whose birth dates all clearly differ - a household shares surname, address,
  landline and often an e-mail, and twins share a birth date too, which Splink's
  independence assumption over-counts,
* (any other Splink match) join people who differ in both first name and birth date: one
  disagreement is already in the model's weights (a second given name, a nickname, a typo
  or an initial is how real duplicates differ), two independent ones are a different person,
* join records separated by a manual cannot-link, or
* exceed the maximum cluster size.

Because the weakest edges come last, a chain A - B - C that would join two customer numbers is
cut at its lowest-probability edge: this is the over-merge guard, applied while building the
clusters rather than as a repair afterwards (equivalent outcome, one pass, no re-splitting).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from identity.config import STRONG_FIELDS
from identity.keys import key_positions, record_keys
from identity.normalise.birth_date import BIRTH_DATE_PARTS
from identity.rules import EMAIL_NAME_RULE, authoritative_mask, authorities
from identity.similarity import first_names_compatible

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_EMPTY: frozenset = frozenset()


#: A birth date as far as it is known: (year, month, day), None for a part not stated.
BirthDate = tuple[int | None, int | None, int | None]


def birth_dates_conflict(a: BirthDate, b: BirthDate) -> bool:
    """Clearly different dates: two or more parts both state differ, and not by a day/month
    swap (one typo, or a date known only in part, never conflicts)."""
    if a == b:
        return False
    differ = sum(x is not None and y is not None and x != y for x, y in zip(a, b, strict=True))
    if differ < 2:
        return False
    return not (a[0] == b[0] and a[1] is not None and a[1] == b[2] and a[2] == b[1])


def _no_birth_date_fits(a: Set[BirthDate], b: Set[BirthDate]) -> bool:
    """No date of one side fits any of the other (a profile collects typos: one fitting
    pair is enough to believe the two sides are one person)."""
    return all(birth_dates_conflict(x, y) for x in a for y in b)


@dataclass(slots=True)
class _Component:
    """What a component's merge guards look at (sizes are kept apart, see the union-find)."""

    strong: Set[tuple[str, str]] = _EMPTY  # (field, value) of authoritative identifiers
    birth_dates: Set[BirthDate] = _EMPTY
    first_names: Set[str] = _EMPTY
    last_names: Set[str] = _EMPTY
    cannot: Set[tuple[int, int]] = _EMPTY


@dataclass
class ClusterOutcome:
    """Component id per node (smallest node id of the component) and a status per edge."""

    component: np.ndarray
    status: list[str]
    refused: dict[str, int]


def people_compatible(a: _Component, b: _Component, threshold: float) -> bool:
    """Some first name of one side fits some first name of the other, or one side holds the
    other's names the wrong way round (a common entry error).  A swap needs both halves to
    fit where both are known: partners share the last name."""
    for x in a.first_names:
        for y in b.first_names:
            if first_names_compatible(x, y, threshold):
                return True
    return _swapped(a, b, threshold) or _swapped(b, a, threshold)


def _swapped(a: _Component, b: _Component, threshold: float) -> bool:
    """``a`` has ``b``'s last name as a first name, and ``a``'s last name (if any) fits one
    of ``b``'s first names (if any)."""
    if not a.first_names & b.last_names:
        return False
    if not a.last_names or not b.first_names:
        return True
    return any(first_names_compatible(x, y, threshold)
               for x in a.last_names for y in b.first_names)


def _merged(mine: Set, theirs: Set) -> Set:
    """Union of two components' value sets.  ``theirs`` belongs to the component being
    absorbed, so it may be reused; single-node components hold (shared) frozensets."""
    if not theirs:
        return mine
    if not mine:
        return theirs
    if isinstance(mine, frozenset):
        mine = set(mine)
    mine |= theirs
    return mine


class _ConstrainedUnionFind:
    """Union-find over node ids with merge guards.

    Only components holding something a guard looks at (strong identifier, birth date, names,
    cannot-links) carry a :class:`_Component`; it is built lazily from the node's own values
    on first use (``seed`` returns None for a node with none of them).  Most nodes are
    person-less event identities: merging those only ever needs the size check.
    """

    def __init__(self, n: int, max_size: int, name_threshold: float, dob_guard: bool,
                 seed: Callable[[int], _Component | None]) -> None:
        self.parent = list(range(n))
        self.size = [1] * n
        self.dob_guard = dob_guard
        self.state: dict[int, _Component | None] = {}
        self.max_size = max_size
        self.name_threshold = name_threshold
        self.seed = seed

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def comp(self, root: int) -> _Component | None:
        """The root's guard state; None for a component with nothing to guard."""
        state = self.state
        if root in state:
            return state[root]
        found = state[root] = self.seed(root) if self.size[root] == 1 else None
        return found

    def roots(self) -> np.ndarray:
        """Component id (root) of every node."""
        label = np.asarray(self.parent, dtype=np.int64)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                return label
            label = jumped

    def why_not(self, a: _Component, b: _Component, must: bool, oversize: bool,
                check_person: bool) -> str | None:
        if a.cannot and b.cannot:
            for key, side in a.cannot:
                if (key, 1 - side) in b.cannot:
                    return "cannot_link"
        if must:
            return None
        if oversize:
            return "max_cluster_size"
        strong_a, strong_b = a.strong, b.strong
        if strong_a and strong_b and not (strong_a <= strong_b or strong_b <= strong_a):
            field = strong_conflict(strong_a, strong_b)
            if field is not None:
                return f"{field}_conflict"
        dates_clash = self.dob_guard and bool(a.birth_dates) and bool(b.birth_dates) \
            and _no_birth_date_fits(a.birth_dates, b.birth_dates)
        if check_person and dates_clash:
            return "birth_date_conflict"
        names_clash = bool(a.first_names) and bool(b.first_names) and not people_compatible(
            a, b, self.name_threshold)
        if check_person and names_clash:
            return "first_name_conflict"
        if names_clash and dates_clash:
            return "person_conflict"
        return None

    def union(self, x: int, y: int, must: bool, check_person: bool) -> str:
        parent = self.parent
        rx = x  # find(x) and find(y), inlined: this runs once per candidate edge
        while parent[rx] != rx:
            rx = parent[rx]
        while parent[x] != rx:
            parent[x], x = rx, parent[x]
        ry = y
        while parent[ry] != ry:
            ry = parent[ry]
        while parent[y] != ry:
            parent[y], y = ry, parent[y]
        if rx == ry:
            return "redundant"
        size = self.size
        oversize = size[rx] + size[ry] > self.max_size
        state = self.state
        a = state[rx] if rx in state else self.comp(rx)
        b = state[ry] if ry in state else self.comp(ry)
        if a is not None and b is not None:
            reason = self.why_not(a, b, must, oversize, check_person)
            if reason is not None:
                return "refused:" + reason
        elif oversize and not must:  # nothing else can object to a guard-free side
            return "refused:max_cluster_size"
        if rx > ry:  # keep the smaller id as root so component ids are deterministic
            rx, ry, a, b = ry, rx, b, a
        parent[ry] = rx
        size[rx] += size[ry]
        if a is None:  # both roots are in ``state`` now (looked up above)
            state[rx] = b
        elif b is not None:
            a.strong = _merged(a.strong, b.strong)
            a.birth_dates = _merged(a.birth_dates, b.birth_dates)
            a.first_names = _merged(a.first_names, b.first_names)
            a.last_names = _merged(a.last_names, b.last_names)
            a.cannot = _merged(a.cannot, b.cannot)
        del state[ry]
        return "merged"


def _attach(uf: _ConstrainedUnionFind, orphan: int, positions: list[int], rights: np.ndarray,
            scores: np.ndarray, strict: bool, status: list[str]) -> None:
    """Attach a person-less node to the profile its candidate people belong to.

    If the node already sits with person data, each edge is an ordinary (checked) merge.
    Otherwise the candidates are grouped by profile: one profile - join it; several - join
    the one holding most candidates (the e-mail's owner, not the partner who borrowed it),
    (ranked by how well the e-mail spells their name, then by how many of its records use
    it) unless ``strict`` (name-derived candidates) or tied, in which case stay separate.
    """
    own_root = uf.find(orphan)
    own = uf.comp(own_root)
    if own is not None and (own.first_names or own.birth_dates):
        for i in positions:
            if strict:  # a name guess never adds a second person to a profile
                same = uf.find(int(rights[i])) == own_root
                status[i] = "redundant" if same else "refused:ambiguous"
            else:
                status[i] = uf.union(orphan, int(rights[i]), False, True)
        return
    support: dict[int, list[int]] = {}
    for i in positions:
        support.setdefault(uf.find(int(rights[i])), []).append(i)

    def strength(item: tuple[int, list[int]]) -> tuple[float, int]:
        return max(float(scores[i]) for i in item[1]), len(item[1])

    if len(support) == 1:
        ranked = list(support.items())
    else:
        strengths = {root: strength((root, members)) for root, members in support.items()}
        ranked = sorted(support.items(),
                        key=lambda kv: (-strengths[kv[0]][0], -strengths[kv[0]][1], kv[0]))
    if len(ranked) > 1 and (strict or strength(ranked[0]) == strength(ranked[1])):
        for i in positions:
            status[i] = "refused:ambiguous"
        return
    chosen = ranked[0][1]
    status[chosen[0]] = uf.union(orphan, int(rights[chosen[0]]), False, True)
    for i in chosen[1:]:
        status[i] = "redundant"
    for _, others in ranked[1:]:
        for i in others:
            status[i] = "refused:minority"


def strong_conflict(a: Set[tuple[str, str]], b: Set[tuple[str, str]]) -> str | None:
    """The first strong identifier (in :data:`STRONG_FIELDS` order) whose values on one side
    neither hold nor are held by the other side's: two different people's numbers."""
    for field in STRONG_FIELDS:
        mine = {value for f, value in a if f == field}
        theirs = {value for f, value in b if f == field}
        if mine and theirs and not (mine <= theirs or theirs <= mine):
            return field
    return None


def cluster_nodes(nodes: pd.DataFrame, edges: pd.DataFrame,
                  cannot_links: list[tuple[int, int]], *, max_cluster_size: int,
                  first_name_similarity: float, birth_date_guard: bool = True,
                  strong_identifiers: Mapping[str, Sequence[str] | str]) -> ClusterOutcome:
    """Apply ``edges`` in order (they must already be sorted strongest first).

    ``nodes`` needs ``node_id`` (0..n-1), ``first_name``, ``last_name``, the birth-date parts,
    each field of ``strong_identifiers`` (identity.yml: field -> sources with authority over
    it, or ``all``) and ``sources`` (comma-separated source names of the node's records).
    A merge joining two different authoritative values of one field is refused with reason
    ``<field>_conflict`` (``customer_number_conflict``, ``national_id_conflict``).
    """
    n = len(nodes)
    strong_values: list[list[tuple[str, str]] | None] = [None] * n
    for field, sources in authorities(strong_identifiers).items():
        mask = authoritative_mask(nodes, field, sources)
        for row, value in zip(np.flatnonzero(mask).tolist(),
                              _values(nodes[field][mask]), strict=True):
            held = strong_values[row]
            if held is None:
                held = strong_values[row] = []
            held.append((field, str(value)))
    node_ids = nodes["node_id"].to_numpy(dtype=np.int64)

    def by_node(values: list[_T]) -> Sequence[_T | None]:
        """Per-row values re-indexed by node id (rows need not be in node order)."""
        if np.array_equal(node_ids, np.arange(n)):
            return values
        out: list[_T | None] = [None] * n
        for node, value in zip(node_ids.tolist(), values, strict=True):
            out[node] = value
        return out

    strong: Sequence[frozenset[tuple[str, str]] | None] = by_node(
        [None if held is None else frozenset(held) for held in strong_values])
    born: Sequence[BirthDate | None] = by_node(_birth_dates(nodes))
    firsts: Sequence[str | None] = by_node(_values(nodes["first_name"]))
    lasts: Sequence[str | None] = by_node(_values(nodes["last_name"]))
    cannot: dict[int, list[tuple[int, int]]] = {}
    for key, (a, b) in enumerate(cannot_links):
        cannot.setdefault(a, []).append((key, 0))
        cannot.setdefault(b, []).append((key, 1))

    guarded = [held is not None or dob is not None or first is not None or last is not None
               for held, dob, first, last in zip(strong, born, firsts, lasts, strict=True)]
    for node in cannot:
        guarded[node] = True
    empty = _EMPTY

    def seed(node: int) -> _Component | None:
        if not guarded[node]:
            return None
        held, dob, first, last = strong[node], born[node], firsts[node], lasts[node]
        return _Component(
            empty if held is None else held,
            empty if dob is None else frozenset((dob,)),
            empty if first is None else frozenset((first,)),
            empty if last is None else frozenset((last,)),
            frozenset(cannot[node]) if node in cannot else empty)

    uf = _ConstrainedUnionFind(n, max_cluster_size, first_name_similarity, birth_date_guard,
                               seed)
    status: list[str] = [""] * len(edges)
    left_nodes = edges["node_l"].to_numpy(dtype=np.int64)
    right_nodes = edges["node_r"].to_numpy(dtype=np.int64)
    lefts, rights = left_nodes.tolist(), right_nodes.tolist()
    rules = edges["rule"].to_numpy(dtype=object)
    musts = (rules == "must_link").tolist()
    strict = rules == EMAIL_NAME_RULE
    checks = edges["check_person"].to_numpy(dtype=bool).tolist()
    attach = edges["attach"].fillna(False).to_numpy(dtype=bool)
    scores = edges["score"].fillna(0.0).to_numpy(dtype=float)
    union = uf.union
    for i in np.flatnonzero(~attach).tolist():
        status[i] = union(lefts[i], rights[i], musts[i], checks[i])
    # attachments (person-less node on the left -> candidate person node on the right), per
    # orphan: identifier attachments first, name-derived guesses only for what is still
    # orphaned
    late = np.flatnonzero(attach)
    late = late[np.lexsort((late, left_nodes[late], strict[late]))]
    bounds = np.flatnonzero(np.r_[True, np.diff(left_nodes[late]) != 0]
                            | np.r_[True, np.diff(strict[late]) != 0]).tolist() \
        if len(late) else []
    late_list, strict_list = late.tolist(), strict.tolist()
    ends = [*bounds[1:], len(late_list)] if bounds else []
    for start, end in zip(bounds, ends, strict=True):
        first = late_list[start]
        if end - start == 1 and not strict_list[first]:  # _attach with one candidate
            status[first] = union(lefts[first], rights[first], False, True)
        else:
            _attach(uf, lefts[first], late_list[start:end], right_nodes, scores,
                    strict_list[first], status)
    refused: dict[str, int] = {}
    for outcome in status:
        if outcome.startswith("refused:"):
            refused[outcome[8:]] = refused.get(outcome[8:], 0) + 1

    component = uf.roots()
    if refused:
        log.info("identity clustering: refused edges by reason %s", dict(sorted(refused.items())))
    return ClusterOutcome(component=component, status=status, refused=refused)


def _birth_dates(nodes: pd.DataFrame) -> list[BirthDate | None]:
    """Each node's birth date parts (None when no part is known)."""
    parts = zip(*(_values(nodes[c]) for c in BIRTH_DATE_PARTS), strict=True)
    return [None if year is None and month is None and day is None else (year, month, day)
            for year, month, day in parts]


def _values(column: pd.Series) -> list[Any]:
    """Column values as a Python list with None for missing (converted in Arrow)."""
    return pa.array(column.array, from_pandas=True).to_pylist()


def components_from_edges(records: pd.DataFrame, edges: pd.DataFrame) -> pd.Series:
    """Connected components of ``records`` (``source, record_id``) over ``edges``.

    The clusters model derives profiles from the *materialised* merged edges instead of
    re-running resolution, so the published graph and the published evidence can never
    disagree.  Returns, aligned with ``records``, the position of the component's first
    record (a plain cluster label).  Edges naming records not in ``records`` are ignored.
    """
    keys = record_keys(records["source"], records["record_id"])
    position = key_positions(keys, [record_keys(edges["source_l"], edges["record_id_l"]),
                                    record_keys(edges["source_r"], edges["record_id_r"])])
    if position is None:
        raise ValueError("components_from_edges: duplicate (source, record_id) in records")
    left, right = position
    known = (left >= 0) & (right >= 0)
    a, b = left[known], right[known]
    label = np.arange(len(keys), dtype=np.int64)
    while True:  # min-label propagation with pointer jumping: a few vectorised passes
        low = np.minimum(label[a], label[b])
        before = label.copy()
        np.minimum.at(label, a, low)
        np.minimum.at(label, b, low)
        np.minimum.at(label, before, label)  # pull each old root down with its members
        while not np.array_equal(label, label[label]):
            label = label[label]
        if np.array_equal(label, before):
            return pd.Series(label, index=records.index, name="cluster")
