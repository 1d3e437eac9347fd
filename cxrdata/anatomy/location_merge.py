"""Location terms per pathology and their merge: the pathology's allow / exclude / rename rules, left +
right -> bilateral, and the report-level merge over sentences (step 6 of :mod:`cxrdata.anatomy.locations`)."""

from __future__ import annotations

from collections.abc import Iterable

from cxrdata.anatomy.location_rules import order_locations, rules, side_zone_terms, term_parts


def pathology_rule(pathology: str) -> dict:
    """The rules of ``location_rules.yaml`` for this pathology (allow, exclude, rename, default)."""
    table = rules()["pathology_rules"]
    return table.get(pathology, table["default"])


def filter_for_pathology(terms: Iterable[str], pathology: str) -> list[str]:
    """Apply the pathology's allow / exclude / rename rules."""
    rule = pathology_rule(pathology)
    out = []
    for term in terms:
        if "allow" in rule and term not in rule["allow"]:
            continue
        if term in rule.get("exclude", ()):
            continue
        out.append(term)
    return out


def merge_bilateral(terms: Iterable[str]) -> tuple[str, ...]:
    """Merge left/right pairs into bilateral terms and drop redundant ones; vocabulary order."""
    merge, parts, term_of = rules()["merge"], term_parts(), side_zone_terms()
    found = set(terms)
    by_zone: dict[str, set[str]] = {}
    for term in found:
        if term in parts:
            side, zone = parts[term]
            by_zone.setdefault(zone, set()).add(side)
    result = {term for term in found if term not in parts}
    for zone, sides in by_zone.items():
        if merge["sides_to_bilateral"] and {"left", "right"} <= sides:
            sides = (sides - {"left", "right"}) | {"bilateral"}
        if merge["bilateral_absorbs_sides"] and "bilateral" in sides:
            sides = {"bilateral"}
        result |= {term_of[side, zone] for side in sides}
    if merge["drop_bare_side"]:
        specific = {parts[t][0] for t in result if t in parts and parts[t][1]}
        result = {t for t in result if not (t in parts and not parts[t][1] and _covered(parts[t][0], specific))}
    return order_locations(result)


def _covered(side: str, specific_sides: set[str]) -> bool:
    if side == "bilateral":
        return "bilateral" in specific_sides or {"left", "right"} <= specific_sides
    return side in specific_sides or "bilateral" in specific_sides


def finalize(terms: Iterable[str], pathology: str) -> tuple[str, ...]:
    """Pathology filter, bilateral merge, then the pathology's renames (merge first: left + right edema
    becomes bilateral, then pulmonary)."""
    merged = merge_bilateral(filter_for_pathology(terms, pathology))
    rename = pathology_rule(pathology).get("rename", {})
    return order_locations(rename.get(term, term) for term in merged)


def report_locations(per_sentence: Iterable[Iterable[str]], pathology: str) -> tuple[str, ...]:
    """Report-level merge over the sentences' terms ("left lower" + "right lower" -> "bilateral lower")."""
    return finalize((t for terms in per_sentence for t in terms), pathology)
