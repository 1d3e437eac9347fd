"""Anatomy words -> the 27 location terms, entity grouping and the bilateral merge rules."""

from __future__ import annotations

import pytest

from cxrdata.anatomy.locations import (
    Group,
    attached_groups,
    entity_groups,
    filter_for_pathology,
    finalize,
    merge_bilateral,
    not_finding_anatomy,
    order_locations,
    phrase_locations,
    report_locations,
    sentence_locations,
)
from cxrdata.extract.base import ANAT_DP, Entity
from cxrdata.extract.rules import RuleExtractor
from cxrdata.text.mentions import finding_spans
from cxrdata.text.tokens import tokenize
from cxrdata.vocabulary import locations

# (anatomy phrase, pathology, expected terms); together they produce every one of the 27 terms.
PHRASES = [
    ("left hemithorax", "Pneumothorax", ("left",)),
    ("left apex", "Pneumothorax", ("left apical",)),
    ("left upper lobe", "Pneumonia", ("left upper",)),
    ("left mid lung", "Lung Opacity", ("left middle",)),
    ("left lower lobe", "Atelectasis", ("left lower",)),
    ("left costophrenic angle", "Pleural Effusion", ("left costophrenic",)),
    ("left pleural space", "Pleural Effusion", ("left pleural",)),
    ("left base", "Atelectasis", ("left base",)),
    ("right hemithorax", "Pneumothorax", ("right",)),
    ("right apex", "Pneumothorax", ("right apical",)),
    ("right upper lobe", "Pneumonia", ("right upper",)),
    ("right middle lobe", "Pneumonia", ("right middle",)),
    ("right lower lobe", "Pneumonia", ("right lower",)),
    ("right costophrenic angle", "Pleural Effusion", ("right costophrenic",)),
    ("right pleural space", "Pneumothorax", ("right pleural",)),
    ("right lung base", "Atelectasis", ("right base",)),
    ("both lungs", "Pneumonia", ("bilateral",)),
    ("biapical", "Pneumothorax", ("bilateral apical",)),
    ("both upper lobes", "Pneumonia", ("bilateral upper",)),
    ("bilateral mid lung zones", "Lung Opacity", ("bilateral middle",)),
    ("lower lobes", "Atelectasis", ("bilateral lower",)),
    ("costophrenic angles", "Pleural Effusion", ("bilateral costophrenic",)),
    ("bilateral pleural spaces", "Pleural Effusion", ("bilateral pleural",)),
    ("both bases", "Atelectasis", ("bibasilar",)),
    ("lingula", "Consolidation", ("lingular",)),
    ("heart", "Cardiomegaly", ("cardiomegaly",)),
    ("cardiac silhouette", "Cardiomegaly", ("cardiomegaly",)),
    ("pulmonary", "Edema", ("pulmonary",)),
    # more spellings
    ("bibasilar", "Atelectasis", ("bibasilar",)),
    ("bibasal", "Atelectasis", ("bibasilar",)),
    ("lung bases", "Atelectasis", ("bibasilar",)),
    ("right apical", "Pneumothorax", ("right apical",)),
    ("apices", "Pneumothorax", ("bilateral apical",)),
    ("left midlung", "Lung Opacity", ("left middle",)),
    ("right mid-lung", "Lung Opacity", ("right middle",)),
    ("left basilar", "Atelectasis", ("left base",)),
    ("lingular", "Pneumonia", ("lingular",)),
    ("retrocardiac", "Lung Opacity", ("left lower",)),
    ("right-sided", "Pleural Effusion", ("right",)),
    ("the lungs", "Pneumonia", ("bilateral",)),
    ("hemithoraces", "Pneumothorax", ("bilateral",)),
    ("bilateral pulmonary", "Edema", ("pulmonary",)),
    ("cardiomediastinal silhouette", "Cardiomegaly", ("cardiomegaly",)),
    # units: sides distribute, zones distribute, nouns split units
    ("left and right lower lobes", "Atelectasis", ("bilateral lower",)),
    ("right upper and lower lobes", "Pneumonia", ("right upper", "right lower")),
    ("left lower lobe and right base", "Atelectasis", ("left lower", "right base")),
    ("base of the left lung", "Atelectasis", ("left base",)),
    ("left upper lobe/lingula", "Pneumonia", ("left upper", "lingular")),
    # no location
    ("lung", "Pneumonia", ()),
    ("lower lobe", "Atelectasis", ()),
    ("right hemidiaphragm", "Atelectasis", ()),
    ("right IJ", "Pneumothorax", ()),
    ("heart and mediastinum", "Pneumonia", ()),
]


def words(phrase: str) -> list[str]:
    return [t.text for t in tokenize(phrase)]


@pytest.mark.parametrize(("phrase", "pathology", "expected"), PHRASES)
def test_phrase_to_terms(phrase: str, pathology: str, expected: tuple[str, ...]) -> None:
    assert finalize(phrase_locations(words(phrase)), pathology) == expected


def test_every_location_term_is_covered() -> None:
    produced = {t for phrase, pathology, _ in PHRASES for t in finalize(phrase_locations(words(phrase)), pathology)}
    assert produced == set(locations())
    assert len(locations()) == 27


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        # left X + right X -> bilateral X, for every zone
        (["left", "right"], ("bilateral",)),
        (["left apical", "right apical"], ("bilateral apical",)),
        (["left upper", "right upper"], ("bilateral upper",)),
        (["left middle", "right middle"], ("bilateral middle",)),
        (["left lower", "right lower"], ("bilateral lower",)),
        (["left costophrenic", "right costophrenic"], ("bilateral costophrenic",)),
        (["left pleural", "right pleural"], ("bilateral pleural",)),
        (["left base", "right base"], ("bibasilar",)),
        # bilateral X absorbs left / right X
        (["bilateral lower", "left lower"], ("bilateral lower",)),
        (["bibasilar", "right base"], ("bibasilar",)),
        # a bare side next to a more specific term of that side (or bilateral) is dropped
        (["left", "left base"], ("left base",)),
        (["right", "bilateral lower"], ("bilateral lower",)),
        (["left", "right lower"], ("left", "right lower")),
        # different zones do not merge
        (["left lower", "right upper"], ("left lower", "right upper")),
        (["left lower", "left base"], ("left lower", "left base")),
        (["lingular", "right middle"], ("right middle", "lingular")),
        ([], ()),
    ],
)
def test_merge_bilateral(terms: list[str], expected: tuple[str, ...]) -> None:
    assert merge_bilateral(terms) == expected


@pytest.mark.parametrize(
    ("terms", "pathology", "expected"),
    [
        (["cardiomegaly", "left lower"], "Cardiomegaly", ("cardiomegaly",)),
        (["cardiomegaly", "left lower"], "Pneumonia", ("left lower",)),
        (["left", "right"], "Edema", ("pulmonary",)),
        (["bilateral"], "Edema", ("pulmonary",)),
        (["pulmonary", "bilateral"], "Edema", ("pulmonary",)),
        (["left lower"], "Edema", ("left lower",)),
        (["left", "right"], "Pleural Effusion", ("bilateral",)),
    ],
)
def test_pathology_rules(terms: list[str], pathology: str, expected: tuple[str, ...]) -> None:
    assert finalize(terms, pathology) == expected


def test_filter_keeps_input_order() -> None:
    assert filter_for_pathology(["right lower", "cardiomegaly", "left"], "Atelectasis") == ["right lower", "left"]


def test_report_level_merge() -> None:
    assert report_locations([("left lower",), ("right lower",)], "Atelectasis") == ("bilateral lower",)
    assert report_locations([("left base",), ("right base",), ()], "Atelectasis") == ("bibasilar",)
    assert report_locations([("left",), ("right",)], "Edema") == ("pulmonary",)
    assert report_locations([], "Atelectasis") == ()


def test_order_locations_is_vocabulary_order_and_rejects_unknown_terms() -> None:
    assert order_locations(["pulmonary", "bibasilar", "left", "left"]) == ("left", "bibasilar", "pulmonary")
    with pytest.raises(ValueError):
        order_locations(["left lower lobe"])


def radgraph_style(sentence: str, *indices: int, label: str = ANAT_DP) -> list[Entity]:
    """Single-token entities like RadGraph's output for the given token indices."""
    tokens = tokenize(sentence)
    return [Entity(tokens[i].text, label, i, i) for i in indices]


def test_single_token_entities_are_grouped() -> None:
    sentence = "Opacities in the left and right lower lobes."
    # tokens: Opacities in the left and right lower lobes .
    entities = radgraph_style(sentence, 3, 5, 6, 7)
    assert entity_groups(sentence, entities) == [Group(("left", "and", "right", "lower", "lobes"), 3, 7)]
    assert sentence_locations(sentence, entities, "Lung Opacity") == ("bilateral lower",)


def test_separated_entities_are_separate_groups() -> None:
    sentence = "Right lower lobe opacity and a left PICC."
    entities = radgraph_style(sentence, 0, 1, 2, 6)
    assert entity_groups(sentence, entities) == [Group(("Right", "lower", "lobe"), 0, 2), Group(("left",), 6, 6)]


def test_only_anat_dp_entities_count() -> None:
    sentence = "Right lower lobe pneumonia, no left effusion."
    entities = [*radgraph_style(sentence, 0, 1, 2), *radgraph_style(sentence, 6, label="ANAT-DA")]
    assert sentence_locations(sentence, entities, "Pneumonia") == ("right lower",)


def test_pathology_name_words_are_not_locations() -> None:
    sentence = "Large left pleural effusion."
    entities = [Entity("left pleural", ANAT_DP, 1, 2)]
    mention = (sentence.index("pleural"), sentence.index("effusion") + len("effusion"))
    assert sentence_locations(sentence, entities, "Pleural Effusion") == ("left pleural",)
    assert sentence_locations(sentence, entities, "Pleural Effusion", [mention], ["pleural"]) == ("left",)


def test_entity_with_mismatched_span_is_read_on_its_own() -> None:
    sentence = "Atelectasis in the left lower lobe."
    entities = [Entity("left lower lobe", ANAT_DP, 40, 42)]
    assert sentence_locations(sentence, entities, "Atelectasis") == ("left lower",)


def spans(sentence: str, *phrases: str) -> list[tuple[int, int]]:
    return [(sentence.index(p), sentence.index(p) + len(p)) for p in phrases]


@pytest.mark.parametrize(
    ("sentence", "target", "expected"),
    [
        ("Small bilateral effusions with bibasilar atelectasis.", "atelectasis", ("bibasilar",)),
        ("Small bilateral effusions with bibasilar atelectasis.", "effusions", ("bilateral",)),
        ("Opacity in the right lower lobe and atelectasis at the left base.", "Opacity", ("right lower",)),
        ("Opacity in the right lower lobe and atelectasis at the left base.", "atelectasis", ("left base",)),
        ("Blunting of the left costophrenic angle from a small effusion.", "effusion", ("left costophrenic",)),
        # nothing attached to the target: the whole sentence's anatomy, as in the paper
        ("Right lower lobe opacity may represent atelectasis.", "atelectasis", ("right lower",)),
    ],
)
def test_anatomy_attached_to_the_target_finding(sentence: str, target: str, expected: tuple[str, ...]) -> None:
    entities = RuleExtractor().extract_one(sentence)
    got = sentence_locations(sentence, entities, "Lung Opacity", spans(sentence, target), (), finding_spans(sentence))
    assert got == expected


def test_groups_without_positions_are_kept() -> None:
    groups = [Group(("left", "base"))]
    assert attached_groups("Left base atelectasis.", groups, [(10, 21)], [(10, 21)]) == groups


# -- issue 13: units, groups, anatomy that does not locate a finding, attachment --------------------------


@pytest.mark.parametrize(
    ("phrase", "pathology", "expected"),
    [
        ("right upper and left lower lobes", "Pneumonia", ("left lower", "right upper")),  # not cross-multiplied
        ("left apical and right basilar", "Lung Opacity", ("left apical", "right base")),
        ("right midlung and left basilar", "Lung Opacity", ("left base", "right middle")),
        ("right upper , right middle and left lower lobe", "Lung Opacity",
         ("left lower", "right upper", "right middle")),
        ("left and right upper lobes", "Pneumonia", ("bilateral upper",)),  # a bare side still shares the zone
        ("basilar", "Atelectasis", ("bibasilar",)),
        ("basal", "Atelectasis", ("bibasilar",)),
        ("base", "Atelectasis", ()),  # a singular "base" without side stays unknown
        ("right medial basilar", "Atelectasis", ("right base",)),
        ("left posterior costophrenic sulcus", "Atelectasis", ("left costophrenic",)),
        ("left CP angle", "Pleural Effusion", ("left costophrenic",)),
        ("mid to lower left lung", "Lung Opacity", ("left middle", "left lower")),
        ("RLL", "Pneumonia", ("right lower",)),  # lobe abbreviations
        ("RML and LLL", "Lung Opacity", ("left lower", "right middle")),
        ("RLL > LLL", "Lung Opacity", ("bilateral lower",)),
        ("bilat", "Pleural Effusion", ("bilateral",)),
    ],
)
def test_units_of_issue_13(phrase: str, pathology: str, expected: tuple[str, ...]) -> None:
    assert finalize(phrase_locations(words(phrase)), pathology) == expected


def test_bilateral_is_dropped_beside_specific_terms_of_both_sides() -> None:
    assert merge_bilateral(["bilateral", "left lower", "right upper"]) == ("left lower", "right upper")
    assert merge_bilateral(["bilateral", "left lower"]) == ("left lower", "bilateral")


@pytest.mark.parametrize(
    ("sentence", "indices", "reason"),
    [
        ("Right-sided pneumothorax, seen on the left lateral decubitus film.", (8,), "view"),
        ("Opacity at the right base compared to the left.", (8,), "comparison"),
        ("Consolidation is denser than on the left.", (6,), "comparison"),
        ("Left lower lobe pneumonia, lungs otherwise clear.", (5,), "normal"),
        ("Clear lungs with mild bibasilar atelectasis.", (1,), "normal"),
        ("Right lower lobe pneumonia, no left effusion.", (6,), "negated"),
        ("Right lower lobe pneumonia, no left effusion.", (0, 1, 2), None),
    ],
)
def test_anatomy_that_does_not_locate_a_finding(sentence: str, indices: tuple[int, ...], reason: str | None) -> None:
    (group,) = entity_groups(sentence, radgraph_style(sentence, *indices))
    assert not_finding_anatomy(sentence, group) == reason


def test_phrases_become_one_anatomy_word() -> None:
    sentence = "Opacity posterior to the heart."
    groups = entity_groups(sentence, radgraph_style(sentence, 1, 4))
    assert groups == [Group(("retrocardiac",), 1, 4)]
    assert sentence_locations(sentence, radgraph_style(sentence, 4), "Lung Opacity") == ("left lower",)
    # without anatomy in the phrase nothing is made up
    assert entity_groups(sentence, []) == []


def test_a_comma_then_a_new_noun_phrase_splits_groups() -> None:
    sentence = "In comparison with the left, the right costophrenic angle is blunted by effusion."
    groups = entity_groups(sentence, radgraph_style(sentence, 4, 7, 8, 9))
    assert [g.words for g in groups] == [("left",), ("right", "costophrenic", "angle")]
    sentence = "Right upper, right middle and left lower lobe opacities."
    assert len(entity_groups(sentence, radgraph_style(sentence, 0, 1, 3, 4, 6, 7, 8))) == 1


@pytest.mark.parametrize(
    ("sentence", "target", "expected"),
    [
        # anatomy of a non-target finding or a device is not given to the target
        ("Collapse of the left upper lobe with left apical pleural thickening.", "Collapse", ("left upper",)),
        ("Right upper lobe pneumonia and a left lower lobe nodule.", "pneumonia", ("right upper",)),
        ("Left lower lobe pneumonia in the setting of a left PICC.", "pneumonia", ("left lower",)),
        # a side right after a finding is that finding's
        ("Moderate effusions bilaterally with small atelectasis.", "effusions", ("bilateral",)),
        # no anatomy of its own: borrowed only through a link word
        ("Small left effusion with adjacent atelectasis.", "atelectasis", ("left",)),
        ("Small left effusion and atelectasis.", "atelectasis", ()),
    ],
)
def test_attachment_with_other_findings(sentence: str, target: str, expected: tuple[str, ...]) -> None:
    entities = RuleExtractor().extract_one(sentence)
    got = sentence_locations(sentence, entities, "Lung Opacity", spans(sentence, target), (), finding_spans(sentence))
    assert got == expected


@pytest.mark.parametrize(
    ("sentence", "target", "expected"),
    [
        ("Minimal basilar atelectasis on the left.", "atelectasis", ("left base",)),
        ("Small right pneumothorax at the apex.", "pneumothorax", ("right apical",)),
        ("Basilar atelectasis, left greater than right.", "atelectasis", ("bibasilar",)),
        ("Basilar opacity in the left lung.", "opacity", ("left base",)),
    ],
)
def test_a_side_said_apart_goes_to_the_unsided_zone(sentence: str, target: str, expected: tuple[str, ...]) -> None:
    entities = RuleExtractor().extract_one(sentence)
    assert sentence_locations(sentence, entities, "Atelectasis", spans(sentence, target), (),
                              finding_spans(sentence)) == expected


def test_a_bare_organ_plural_is_weak() -> None:
    sentence = "Lungs show airspace disease in the left lower lobe."
    entities = radgraph_style(sentence, 0, 6, 7, 8)
    assert sentence_locations(sentence, entities, "Lung Opacity") == ("left lower",)
    sentence = "Diffuse opacities throughout the lungs."
    assert sentence_locations(sentence, radgraph_style(sentence, 4), "Lung Opacity") == ("bilateral",)
    assert sentence_locations(sentence, radgraph_style(sentence, 4), "Edema") == ("pulmonary",)


def test_cardiomegaly_without_anatomy_is_located_at_the_heart() -> None:
    sentence = "Severe cardiomegaly."
    mention = spans(sentence, "cardiomegaly")
    assert sentence_locations(sentence, [], "Cardiomegaly", mention) == ("cardiomegaly",)
    assert sentence_locations(sentence, [], "Cardiomegaly") == ()  # only for a sentence that mentions it
    assert sentence_locations("Edema.", [], "Edema", [(0, 5)]) == ()  # no default for other pathologies


def test_word_lists_must_hold_words(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxrdata.anatomy import location_rules as module
    from cxrdata.yamlfiles import load_yaml

    data = load_yaml("prepositions: [in, on]")  # YAML 1.1 reads a bare `on` as true
    assert data == {"prepositions": ["in", True]}
    monkeypatch.setattr(module, "load_yaml", lambda _text: data)
    module.rules.cache_clear()
    try:
        with pytest.raises(ValueError, match="prepositions"):
            module.rules()
    finally:
        monkeypatch.undo()
        module.rules.cache_clear()
    assert "on" in module.rules()["prepositions"]
