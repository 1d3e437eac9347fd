"""ConText-style negation, resolution and uncertainty on hand-written radiology sentences."""

from __future__ import annotations

import pytest

from cxrdata.text.context import NEGATED, POSITIVE, UNCERTAIN, ConText, default_context, expand_leading_group

CASES = [
    # negation, with list scope
    ("No pneumothorax.", "pneumothorax", NEGATED),
    ("There is no pneumothorax.", "pneumothorax", NEGATED),
    ("FINDINGS: No pneumothorax.", "pneumothorax", NEGATED),
    ("No pneumothorax or pleural effusion.", "pleural effusion", NEGATED),
    ("No focal consolidation, effusion, or pneumothorax.", "consolidation", NEGATED),
    ("No focal consolidation, effusion, or pneumothorax.", "effusion", NEGATED),
    ("No focal consolidation, effusion, or pneumothorax.", "pneumothorax", NEGATED),
    ("Left lower lobe opacity without effusion.", "effusion", NEGATED),
    ("Left lower lobe opacity without effusion.", "opacity", POSITIVE),
    ("Negative for pneumothorax.", "pneumothorax", NEGATED),
    ("The lungs are free of consolidation.", "consolidation", NEGATED),
    ("No evidence of pneumonia.", "pneumonia", NEGATED),
    ("Pneumothorax is not seen.", "pneumothorax", NEGATED),
    ("Pneumothorax not identified.", "pneumothorax", NEGATED),
    ("Pneumothorax is no longer seen.", "pneumothorax", NEGATED),
    ("Pneumothorax is absent.", "pneumothorax", NEGATED),
    ("Bibasilar opacities likely atelectasis rather than pneumonia.", "pneumonia", NEGATED),
    ("Bibasilar opacities likely atelectasis rather than pneumonia.", "atelectasis", POSITIVE),
    # resolution
    ("The left effusion has resolved.", "effusion", NEGATED),
    ("Resolved right lower lobe pneumonia.", "pneumonia", NEGATED),
    ("Right lower lobe opacity has cleared.", "opacity", NEGATED),
    ("Interval resolution of the right effusion.", "effusion", NEGATED),
    # uncertainty
    ("Right lower lobe opacity may represent pneumonia.", "pneumonia", UNCERTAIN),
    ("Right lower lobe opacity may represent pneumonia.", "opacity", POSITIVE),
    ("Pneumonia cannot be excluded.", "pneumonia", UNCERTAIN),
    ("Pneumonia can not be ruled out.", "pneumonia", UNCERTAIN),
    ("Cannot exclude pneumonia.", "pneumonia", UNCERTAIN),
    ("Possible small left effusion.", "effusion", UNCERTAIN),
    ("Findings suggestive of pneumonia.", "pneumonia", UNCERTAIN),
    ("Atelectasis versus pneumonia.", "atelectasis", UNCERTAIN),
    ("Atelectasis versus pneumonia.", "pneumonia", UNCERTAIN),
    ("?pneumonia", "pneumonia", UNCERTAIN),
    # pseudo-triggers
    ("No change in small left pleural effusion.", "effusion", POSITIVE),
    ("Left effusion has not resolved.", "effusion", POSITIVE),
    ("Partially resolved right lower lobe pneumonia.", "pneumonia", POSITIVE),
    ("Cardiomegaly is not significantly changed.", "cardiomegaly", POSITIVE),
    # scope ends at termination terms and at triggers of another category
    ("No pneumothorax, but there is a small left pleural effusion.", "effusion", POSITIVE),
    ("No pneumothorax; small left effusion.", "effusion", POSITIVE),
    ("No pneumothorax, however mild edema.", "edema", POSITIVE),
    ("Possible pneumonia, no effusion.", "pneumonia", UNCERTAIN),
    ("Possible pneumonia, no effusion.", "effusion", NEGATED),
    ("Small left effusion is unchanged, no pneumothorax.", "effusion", POSITIVE),
    ("Moderate cardiomegaly.", "cardiomegaly", POSITIVE),
    # word boundaries: "cannot" does not contain the trigger "not", "know" not "no"
    ("Nodular opacity, known left effusion.", "effusion", POSITIVE),
    # issue 13: the "clear of" family and other phrasings of the ConText rule sets
    ("The lungs are clear of focal consolidation, effusion or pneumothorax.", "pneumothorax", NEGATED),
    ("Right lower lobe pneumonia; the lungs are otherwise clear of consolidation.", "consolidation", NEGATED),
    ("Right lower lobe pneumonia; the lungs are otherwise clear of consolidation.", "pneumonia", POSITIVE),
    ("Lack of consolidation.", "consolidation", NEGATED),
    ("Pneumonia is unlikely.", "pneumonia", NEGATED),
    ("Linear opacity, unlikely to represent pneumonia.", "pneumonia", NEGATED),
    ("Linear opacity, unlikely to represent pneumonia.", "opacity", POSITIVE),
    ("The study is negative for acute pneumonia.", "pneumonia", NEGATED),
    ("The frontal view fails to demonstrate a pneumothorax.", "pneumothorax", NEGATED),
    ("The small right apical pneumothorax has disappeared.", "pneumothorax", NEGATED),
    ("Left lower lobe consolidation has largely cleared.", "consolidation", NEGATED),
    ("Doubtful left basilar pneumonia.", "pneumonia", UNCERTAIN),
    ("Suggestion of a small left effusion.", "effusion", UNCERTAIN),
    ("Pneumothorax, if any, is tiny.", "pneumothorax", UNCERTAIN),
    ("A hazy opacity in the right upper lobe may be present.", "opacity", UNCERTAIN),
    ("No pneumothorax, and the small right effusion is unchanged.", "effusion", POSITIVE),
    ("No focal consolidation, effusion, and pneumothorax.", "pneumothorax", NEGATED),
    # a "?" hedges the word after it, or the one before it at the end of a clause; a spaced dash ends scopes
    ("Left base opacity ? atelectasis", "atelectasis", UNCERTAIN),
    ("Left base opacity ? atelectasis", "opacity", POSITIVE),
    ("Pneumonia?", "pneumonia", UNCERTAIN),
    ("Right basilar opacity - atelectasis vs aspiration.", "opacity", POSITIVE),
    ("Right basilar opacity - atelectasis vs aspiration.", "atelectasis", UNCERTAIN),
    ("No right-sided effusion.", "effusion", NEGATED),
]


@pytest.mark.parametrize(("sentence", "target", "expected"), CASES)
def test_certainty(sentence: str, target: str, expected: str) -> None:
    start = sentence.lower().index(target)
    assert default_context().certainty(sentence, start, start + len(target)) == expected


def test_triggers_are_leftmost_longest_and_pseudo_removed() -> None:
    sentence = "There is no evidence of pneumothorax and no change in effusion."
    found = [(t.category, sentence[t.start : t.end]) for t in default_context().triggers(sentence)]
    assert found == [("terminate", "There is"), ("negated", "no evidence of")]


def test_same_phrase_forward_and_backward_is_bidirectional() -> None:
    context = ConText({"negated": {"forward": ["resolved"], "backward": ["resolved"]}})
    assert [t.direction for t in context.triggers("Effusion resolved.")] == ["bidirectional"]


def test_expand_leading_group() -> None:
    assert expand_leading_group("(?:has|have) resolved") == ["has resolved", "have resolved"]
    assert expand_leading_group("(?:interval )?resolution of") == ["interval resolution of", "resolution of"]
    assert expand_leading_group("no") == ["no"]


def test_rule_must_start_with_a_literal() -> None:
    with pytest.raises(ValueError):
        ConText({"negated": {"forward": ["\\w+ not"]}})


def test_a_trigger_inside_the_target_modifies_it() -> None:
    sentence = "The heart is not enlarged."
    assert default_context().certainty(sentence, 4, len(sentence) - 1) == NEGATED
    sentence = "The heart is probably enlarged."
    assert default_context().certainty(sentence, 4, len(sentence) - 1) == UNCERTAIN
