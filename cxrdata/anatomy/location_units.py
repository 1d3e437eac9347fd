"""Reading a group of anatomy words into location terms: units of side, zone and region words.

"left lower lobe and right base" is two units; "right upper and left lower lobes" two units; a unit gives
side x zone terms ("left lower"), whole-region terms ("lingular") or a bare side ("right"); an unsided
"basilar" means both bases; a bare plural organ word ("the lungs") means both sides only when nothing
more specific is named; a side said apart from its zone ("basilar atelectasis on the left") is given to
that zone (:func:`share_sides`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cxrdata.anatomy.location_rules import closers, rules, word_set
from cxrdata.vocabulary import location_term


@dataclass
class Unit:
    sides: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    plural: bool = False
    both_bases: bool = False  # an unsided "basilar" / "basal"
    blocked: bool = False
    closed: bool = False
    has_region: bool = False

    @property
    def weak(self) -> bool:
        """A bare plural organ word ("lungs", "lung fields"): both sides, unless something is more specific."""
        return self.plural and not (self.sides or self.zones or self.terms or self.blocked or self.has_region)

    @property
    def side_only(self) -> bool:
        """Only a side ("left", "on the right side", "in the left lung")."""
        return bool(self.sides) and not (self.zones or self.terms or self.blocked or self.has_region)

    @property
    def unsided_zone(self) -> bool:
        return bool(self.zones) and not (self.sides or self.blocked or self.terms)

    def emit(self) -> list[str]:
        if self.blocked:
            return []
        implied = ["bilateral"] if self.plural or self.both_bases else []
        sides = list(dict.fromkeys(self.sides)) or implied
        out = list(self.terms)
        if self.zones:
            out += [location_term(s, z) for s in sides for z in dict.fromkeys(self.zones)]
        elif not self.has_region and not self.terms:
            out += sides
        return out


def read_units(words: Sequence[str]) -> list[Unit]:
    r = rules()
    modifiers = word_set("modifiers")
    units, unit, split_pending, after_of = [], Unit(), False, False
    for raw in words:
        word = raw.lower()
        if word in r["connectors"]:
            split_pending = split_pending or word != "of"
            after_of = after_of or word == "of"
            continue
        if word in modifiers:  # transparent: neither a unit's content nor a break between units
            continue
        is_side = word in r["sides"] or word in r["side_zones"]
        starts_unit = is_side or word in r["regions"] or word in r["blockers"] or word in r["nouns"]
        complete = bool(unit.sides and (unit.zones or unit.terms))  # "right upper" + "and left lower"
        if split_pending and starts_unit and not after_of and (unit.closed or (is_side and complete)):
            units.append(unit)
            unit = Unit()
        split_pending = after_of = False
        if word in r["sides"]:
            unit.sides.append(r["sides"][word])
        elif word in r["side_zones"]:
            side, zone = r["side_zones"][word]
            unit.terms.append(location_term(side, zone))
        elif word in r["zones"]:
            unit.zones.append(r["zones"][word])
            unit.both_bases = unit.both_bases or word in word_set("bilateral_when_unsided")
        elif word in r["regions"]:
            unit.terms.append(r["regions"][word])
            unit.has_region = True
        elif word in r["blockers"]:
            unit.blocked = True
        unit.plural = unit.plural or word in r["plural"]
        unit.closed = unit.closed or word in closers()
    units.append(unit)
    return units


def phrase_locations(words: Sequence[str]) -> list[str]:
    """Location terms named by one group of anatomy words, before pathology filtering and merging.

    >>> phrase_locations(["left", "and", "right", "lower", "lobes"])
    ['left lower', 'right lower']
    >>> phrase_locations(["right", "upper", "and", "left", "lower", "lobes"])
    ['right upper', 'left lower']
    """
    return [term for u in read_units(words) for term in u.emit()]


def share_sides(units: list[list[Unit]]) -> list[list[Unit]]:
    """A side said on its own ("on the left", "bilaterally", "in the right hemithorax") goes to the
    unsided zones of the same finding ("basilar atelectasis on the left" -> left base)."""
    flat = [u for group in units for u in group]
    sides = [s for u in flat if u.side_only for s in u.sides]
    if not sides or not any(u.unsided_zone for u in flat):
        return units
    out = []
    for group in units:
        kept = []
        for unit in group:
            if unit.side_only:
                continue
            if unit.unsided_zone:
                unit.sides = list(sides)
            kept.append(unit)
        out.append(kept)
    return out
