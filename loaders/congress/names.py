"""Who is who: one politician per person across both files and all spellings.

The Senate file writes one senator several ways ("Ron Wyden", "Ron L Wyden",
"Ronald L Wyden"; "A. Mitchell Mcconnell, Jr."), the House file adds titles and
noise ("Hon. Neal Patrick MD, FACS Dunn", "Hon. James E Hon Banks", "None Sara
Jacobs"). Identity is resolved with a union-find over two kinds of evidence:
a normalised name key ``last|first`` (titles, suffixes, initials and quoted
nicknames removed, common nicknames mapped to the given name) and the bioguide
id that Senate filings carry. Two spellings are one person when they share a
name key or a bioguide id.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable

# Tokens that are titles, degrees, generational suffixes or filler in the source files.
NOISE_TOKENS = frozenset({"hon", "honorable", "mr", "mrs", "ms", "dr", "none", "md", "facs", "jr", "sr", "ii",
                          "iii", "iv", "senator", "rep"})
# Nickname -> given name, for the first-name part of the key only.
NICKNAMES = {"tom": "thomas", "jack": "john", "ron": "ronald", "ted": "rafael", "mike": "michael",
             "bill": "william", "chris": "christopher", "dan": "daniel", "joe": "joseph", "pat": "patrick",
             "rob": "robert", "bob": "robert", "tim": "timothy", "jim": "james", "dave": "david",
             "greg": "gregory", "nick": "nicholas", "jacky": "jacklyn", "chuck": "charles", "bobby": "robert"}
_QUOTED = re.compile(r'"[^"]*"|\([^)]*\)')
_LEADING_TITLES = re.compile(r"^(?:(?:hon|mr|mrs|ms|dr|none)\.?\s+)+", re.IGNORECASE)


def name_tokens(raw: str) -> list[str]:
    """Lower-case name tokens without titles, suffixes, initials or quoted nicknames."""
    text = _QUOTED.sub(" ", raw or "")
    tokens = re.split(r"[\s,.]+", text.lower())
    return [t for t in tokens if len(t) > 1 and t not in NOISE_TOKENS]


def name_key(raw: str) -> str | None:
    """``last|first`` for matching spellings of one person, or None when no name is left."""
    tokens = name_tokens(raw)
    if not tokens:
        return None
    first = tokens[0] if len(tokens) > 1 else ""
    return f"{tokens[-1]}|{NICKNAMES.get(first, first)}"


def display_name(raw: str) -> str:
    """The spelling shown to people: leading titles removed, whitespace collapsed, original case."""
    text = _LEADING_TITLES.sub("", " ".join((raw or "").split()))
    text = text.strip(" ,")
    return text.title() if text.isupper() else text


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class Sighting:
    """One row's claim about who traded: the raw spelling, chamber, and what else it says."""

    raw_name: str
    chamber: str
    when: str  # ISO date of the trade, to pick the latest chamber/district
    bioguide: str | None = None
    district: str | None = None


@dataclass
class Person:
    key: str
    full_name: str
    chamber: str
    state: str | None
    district: str | None
    bioguide: str | None
    aliases: list[str] = field(default_factory=list)


@dataclass
class Identities:
    """The resolved people, and the politician key of every raw spelling."""

    people: dict[str, Person]
    key_of_name: dict[str, str]

    def key_for(self, raw_name: str) -> str | None:
        return self.key_of_name.get(raw_name)


def resolve(sightings: Iterable[Sighting]) -> Identities:
    """Group spellings into people (union-find over name keys and bioguide ids)."""
    sightings = list(sightings)
    uf = _UnionFind()
    for s in sightings:
        nk = name_key(s.raw_name)
        atoms = ([f"name:{nk}"] if nk else []) + ([f"bio:{s.bioguide}"] if s.bioguide else [])
        for a in atoms:
            uf.find(a)
        for a in atoms[1:]:
            uf.union(atoms[0], a)
    groups: dict[str, list[Sighting]] = defaultdict(list)
    for s in sightings:
        nk = name_key(s.raw_name)
        atom = f"name:{nk}" if nk else (f"bio:{s.bioguide}" if s.bioguide else None)
        if atom is not None:
            groups[uf.find(atom)].append(s)
    people: dict[str, Person] = {}
    key_of_name: dict[str, str] = {}
    for members in groups.values():
        person = _person(members)
        people[person.key] = person
        for s in members:
            key_of_name[s.raw_name] = person.key
    return Identities(people, key_of_name)


def _most_common(values: Iterable[str]) -> str | None:
    counts = Counter(v for v in values if v)
    if not counts:
        return None
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def _person(members: list[Sighting]) -> Person:
    bioguide = _most_common(s.bioguide for s in members)
    name_keys = sorted({nk for s in members if (nk := name_key(s.raw_name))})
    key = bioguide or f"name:{name_keys[0]}"
    latest = max(members, key=lambda s: (s.when, s.chamber))
    district = _latest(members, "district")
    return Person(
        key=key,
        full_name=display_name(_best_spelling(members)),
        chamber=latest.chamber,
        state=district[:2].upper() if district else None,
        district=district,
        bioguide=bioguide,
        aliases=sorted({" ".join(s.raw_name.split()) for s in members}),
    )


def _best_spelling(members: list[Sighting]) -> str:
    """The cleanest spelling: fewest title/noise tokens, not all caps, then the most frequent."""
    counts = Counter(s.raw_name for s in members if s.raw_name)

    def noise(raw: str) -> int:
        return sum(t in NOISE_TOKENS for t in re.split(r"[\s,.]+", _QUOTED.sub(" ", display_name(raw)).lower()))

    return min(counts, key=lambda r: (noise(r), r.isupper(), -counts[r], r))


def _latest(members: list[Sighting], attr: str) -> str | None:
    dated = [(s.when, getattr(s, attr)) for s in members if getattr(s, attr)]
    return max(dated)[1] if dated else None
