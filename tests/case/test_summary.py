import pytest

from leukoscope.case.summary import REFER, summarise
from leukoscope.cells.review import NOT_A_LEUKOCYTE, OTHER_LEUKOCYTE, UNSURE

CLASSES = ["Benign", "Early", "Pre", "Pro"]


def _cells(labels_and_flags):
    return [{"id": i, "label": label, "abstain": flagged} for i, (label, flagged) in enumerate(labels_and_flags)]


def test_the_call_is_the_class_most_reliable_cells_carry_with_its_interval():
    cells = _cells([("Pre", False)] * 6 + [("Benign", False)] * 2 + [("Pro", True)] * 5)
    s = summarise(cells, CLASSES, min_reliable=5)
    assert s["leukocytes"] == 13 and s["reliable"] == 8
    assert s["per_class"]["Pro"]["n"] == 5  # flagged cells are counted, but do not vote
    assert s["call"]["label"] == "Pre" and s["call"]["n"] == 6 and s["call"]["share"] == pytest.approx(6 / 8)
    low, high = s["call"]["ci"]
    assert 0.3 < low < 0.75 < high < 1.0
    assert s["blast_like"]["n"] == 11 and s["blast_like"]["share"] == pytest.approx(11 / 13)


def test_too_few_reliable_cells_or_none_at_all_is_a_referral_not_an_error():
    s = summarise(_cells([("Pre", False)] * 2 + [("Pro", True)] * 9), CLASSES, min_reliable=5)
    assert s["call"]["label"] is None and s["call"]["text"].startswith(REFER) and "2 of 11" in s["call"]["text"]
    empty = summarise([], CLASSES)
    assert empty["leukocytes"] == 0 and empty["call"]["label"] is None and "no leukocyte found" in empty["call"]["text"]
    assert all(v["n"] == 0 and v["share"] == 0 for v in empty["per_class"].values())


def test_reviews_replace_the_model_and_count_as_the_reviewer_says():
    cells = _cells([("Pre", False)] * 4 + [("Pro", True)] * 4)
    s = summarise(cells, CLASSES, min_reliable=5, reviews={4: "Pro", 5: "Pro", 0: NOT_A_LEUKOCYTE, 1: OTHER_LEUKOCYTE, 2: UNSURE})
    assert s["leukocytes"] == 7  # the "not a leukocyte" is gone
    assert s["other_leukocytes"] == 1 and s["per_class"]["Pre"]["n"] == 2  # cell 2 is unsure: counted as Pre, not reliable
    assert s["reliable"] == 3 and s["call"]["label"] is None  # cell 3 (Pre) and the two confirmed Pro
    s = summarise(cells, CLASSES, min_reliable=3, reviews={0: "Pro", 4: "Pro", 5: "Pro", 6: "Pro", 7: "Pro"})
    assert s["call"]["label"] == "Pro" and s["call"]["n"] == 5 and s["reliable"] == 8 and s["reviewed"] == 5
