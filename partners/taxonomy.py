"""The shared product taxonomy: one versioned category tree, shipped as data beside the code.

Ids (`cat_dog_beds`) are stable across versions, so profiles and offers can store them;
names may be reworded. The tree is read once from `partners/data/taxonomy.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from partners.errors import Invalid, NotFound

SEPARATOR = " > "
_ID = re.compile(r"^cat_[a-z0-9]+(?:_[a-z0-9]+)*$")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Category:
    """One node of the tree; `depth` is 1 for a root."""

    id: str
    name: str
    parent: str | None
    depth: int


class Taxonomy:
    """An immutable category tree with lookups by id, navigation and name search."""

    __slots__ = ("_by_id", "_children", "_lineage", "_version")
    _version: str
    _by_id: Mapping[str, Category]
    _children: Mapping[str | None, tuple[str, ...]]
    _lineage: Mapping[str, tuple[str, ...]]

    def __init__(self, version: str, nodes: Iterable[Mapping[str, Any]]) -> None:
        """Build from `{id, name, parent}` nodes; parents must come before their children."""
        if not version:
            raise ValueError("taxonomy version is empty")
        by_id: dict[str, Category] = {}
        children: dict[str | None, list[str]] = {None: []}
        lineage: dict[str, tuple[str, ...]] = {}
        for node in nodes:
            category_id, name, parent = node["id"], node["name"], node["parent"]
            if not isinstance(category_id, str) or not _ID.match(category_id):
                raise ValueError(f"bad category id {category_id!r}")
            if category_id in by_id:
                raise ValueError(f"duplicate category id {category_id!r}")
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"category {category_id!r} has no name")
            # Requiring parents first rules out cycles and dangling parents in one pass.
            if parent is not None and parent not in by_id:
                raise ValueError(f"category {category_id!r} names parent {parent!r} before it is defined")
            depth = 1 if parent is None else by_id[parent].depth + 1
            by_id[category_id] = Category(category_id, name, parent, depth)
            children.setdefault(parent, []).append(category_id)
            children[category_id] = []
            lineage[category_id] = (category_id, *(lineage[parent] if parent is not None else ()))
        # Shared by every request of the process, so it is frozen once built.
        object.__setattr__(self, "_version", version)
        object.__setattr__(self, "_by_id", MappingProxyType(by_id))
        object.__setattr__(self, "_children", MappingProxyType({key: tuple(value) for key, value in children.items()}))
        object.__setattr__(self, "_lineage", MappingProxyType(lineage))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Taxonomy is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Taxonomy is immutable")

    @classmethod
    def from_json(cls, text: str) -> Taxonomy:
        """Parse the data file's format: `{"version": ..., "nodes": [...]}`."""
        document = json.loads(text)
        return cls(document["version"], document["nodes"])

    @property
    def version(self) -> str:
        """The data version, e.g. "2026-11"."""
        return self._version

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Category]:
        """Every category, parents before children."""
        return iter(self._by_id.values())

    def __contains__(self, category_id: object) -> bool:
        return category_id in self._by_id

    def get(self, category_id: str, *, param: str = "category_id") -> Category:
        """The category with this id; NotFound (naming `param`) if there is none."""
        found = self._by_id.get(category_id)
        if found is None:
            raise NotFound(f"No category with id '{category_id}' in taxonomy {self._version}.", param=param)
        return found

    def exists(self, category_id: str) -> bool:
        """Whether the id names a category."""
        return category_id in self._by_id

    def roots(self) -> tuple[Category, ...]:
        """The top-level branches, in data order."""
        return self.children(None)

    def children(self, category_id: str | None) -> tuple[Category, ...]:
        """Direct children of a category, or the roots for None."""
        if category_id is not None:
            self.get(category_id)
        return tuple(self._by_id[child] for child in self._children[category_id])

    def lineage(self, category_id: str) -> tuple[str, ...]:
        """Ids from the category itself up to its root."""
        self.get(category_id)
        return self._lineage[category_id]

    def ancestors(self, category_id: str) -> tuple[Category, ...]:
        """Ancestors, nearest first, excluding the category itself."""
        return tuple(self._by_id[ancestor] for ancestor in self.lineage(category_id)[1:])

    def path(self, category_id: str) -> tuple[str, ...]:
        """Names from the root down to the category."""
        return tuple(self._by_id[step].name for step in reversed(self.lineage(category_id)))

    def label(self, category_id: str) -> str:
        """The path for display: "Pet Supplies > Dog Supplies > Dog Beds"."""
        return SEPARATOR.join(self.path(category_id))

    def is_leaf(self, category_id: str) -> bool:
        """Whether the category has no children."""
        self.get(category_id)
        return not self._children[category_id]

    def descendants(self, category_id: str) -> tuple[Category, ...]:
        """Everything under the category, depth first, excluding itself."""
        self.get(category_id)
        found: list[Category] = []
        stack = list(reversed(self._children[category_id]))
        while stack:
            current = stack.pop()
            found.append(self._by_id[current])
            stack.extend(reversed(self._children[current]))
        return tuple(found)

    def covers(self, ancestor_id: str, category_id: str) -> bool:
        """Whether `category_id` is `ancestor_id` or lies under it."""
        self.get(ancestor_id, param="ancestor_id")
        return ancestor_id in self.lineage(category_id)

    def deepest_common_ancestor(self, first_id: str, second_id: str) -> Category | None:
        """The most specific category covering both (possibly one of them), or None across roots."""
        second = set(self.lineage(second_id))
        for step in self.lineage(first_id):
            if step in second:
                return self._by_id[step]
        return None

    def search(self, query: str, limit: int = 20) -> list[Category]:
        """Categories whose names match `query`, exact and prefix matches first."""
        if limit < 1:
            raise Invalid("limit must be at least 1.", param="limit")
        needle = " ".join(query.casefold().split())
        if not needle:
            return []
        terms = _WORD.findall(needle)
        ranked: list[tuple[int, int, str, Category]] = []
        for category in self._by_id.values():
            rank = _match_rank(needle, terms, category.name.casefold())
            if rank is not None:
                # Among equal matches, broader categories first: they are what people browse by.
                ranked.append((rank, category.depth, category.name.casefold(), category))
        ranked.sort(key=lambda entry: entry[:3])
        return [entry[3] for entry in ranked[:limit]]

    def validate_ids(self, category_ids: Iterable[str], *, param: str = "categories") -> None:
        """Invalid naming the first id that is not in the taxonomy."""
        for category_id in category_ids:
            if category_id not in self._by_id:
                raise Invalid(f"Unknown category '{category_id}' (taxonomy {self._version}).", param=param)


def _match_rank(needle: str, terms: Sequence[str], name: str) -> int | None:
    """0 exact, 1 name prefix, 2 word prefix, 3 substring, 4 every word found; None if no match."""
    if name == needle:
        return 0
    if name.startswith(needle):
        return 1
    words = _WORD.findall(name)
    if any(word.startswith(needle) for word in words):
        return 2
    if needle in name:
        return 3
    # "dog bed" should find "Orthopedic Dog Beds": each term starts some word of the name.
    if terms and all(any(word.startswith(term) for word in words) for term in terms):
        return 4
    return None


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """The taxonomy shipped with the package, parsed once per process."""
    text = resources.files("partners").joinpath("data").joinpath("taxonomy.json").read_text(encoding="utf-8")
    return Taxonomy.from_json(text)
