"""Every report of the default MIMIC sample against the official sectioning, written out by hand.

The expected values below were derived by hand from MIT-LCP/mimic-cxr ``txt/section_parser.py`` and
``txt/create_section_files.py`` (header pattern, name table, empty-section and last-paragraph rules,
last occurrence of each section, the per-study rules of ``custom_mimic_cxr_rules()``), and cross-checked
by running those two files on the sample outside this repository. They are not computed by cxrdata.
Values are whitespace-normalised as cxrdata stores them (line wraps joined, runs of spaces collapsed,
paragraphs separated by one newline); upstream writes the same text with its line breaks, ``.strip()``-ed.
The study under a span rule (51410602) gets ``text[47:320]`` as its conclusion and no other section;
the study under a section-name rule (59067458) gets its last RECOMMENDATION(S) section as impression.
"""

from __future__ import annotations

import pytest
from cxrdata_testing import SAMPLE_REPORT, read_records

from cxrdata.sample.mimic import MimicSample
from cxrdata.sources.mimic import ReportStage
from cxrdata.text.sections import report_sections

SAMPLE_FINDINGS = (
    "Cardiac size cannot be evaluated. Large left pleural effusion is new. Small right effusion is new. "
    "The upper lungs are clear. Right lower lobe opacities are better seen in prior CT. "
    "There is no pneumothorax. There are mild degenerative changes in the thoracic spine"
)

# layout -> study of the default sample (subjects=12, seed=0), as cxrdata.sample.mimic_layouts places them.
LAYOUTS = {
    "crlf": 57102878, "custom_span": 51410602, "title_line": 57784686, "inline_header": 55861230,
    "ndication": 51254430, "concusion": 55604759, "coinclusion": 58181209, "clinical_questions": 58881183,
    "wet_read": 55540905, "pfi": 52416757, "custom_section": 59067458,
}

# study_id: (findings, impression, last_paragraph, comparison)
EXPECTED = {
    '50610338': (
        (
            'There is patchy left lower lobe consolidation. There is no pneumothorax. Lung volumes are normal. The '
            'visualized osseous structures are unremarkable.'
        ),
        'New patchy left lower lobe consolidation.',
        None,
        'Multiple prior chest radiographs, most recently ___.',
    ),
    '51245547': (
        (
            'Trace pleural effusion at the left costophrenic angle is new. The cardiomediastinal silhouette is '
            'within normal limits. No focal airspace opacity is seen. No acute osseous abnormality is seen.'
        ),
        'Trace pleural effusion at the left costophrenic angle.',
        None,
        '___',
    ),
    '51254430': (  # ndication
        (
            'There is evidence of left lower lobe pneumonia. Focal airspace consolidation is seen in the lingula. '
            'The cardiomediastinal silhouette is within normal limits. Left lower lobe pneumonia. Focal lingular '
            'airspace consolidation.'
        ),
        '___ year old woman with shortness of breath // eval for acute process',
        None,
        'None.',
    ),
    '51410602': (  # custom_span
        None,
        (
            'No acute cardiopulmonary process. No pneumothorax or pleural effusion. The lungs are clear without '
            'focal consolidation. Negative for pneumonia. The visualized osseous structures are unremarkable. Lung '
            'volumes are low, which accentuates the bronchovascular markings.'
        ),
        None,
        None,
    ),
    '52258694': (
        None,
        None,
        (
            'Comparison is made to the study from ___.\nA right internal jugular central venous catheter terminates '
            'in the mid SVC. There is no pulmonary edema. Lung volumes are normal.\nNormal chest radiograph.'
        ),
        None,
    ),
    '52416757': (  # pfi
        (
            'Findings are consistent with moderate bilateral perihilar edema. The cardiomediastinal silhouette is '
            'within normal limits. The visualized upper abdomen is unremarkable. The heart is not enlarged. Lung '
            'volumes are low, which accentuates the bronchovascular markings.'
        ),
        'Moderate bilateral perihilar edema.',
        None,
        'Prior studies from ___ and ___.',
    ),
    '52883307': (
        None,
        (
            'The endotracheal tube terminates 4 cm above the carina. A nasogastric tube courses below the diaphragm '
            'with its tip in the stomach. Enlarged heart is again noted. No focal airspace opacity is seen. No '
            'atelectasis is seen. The visualized osseous structures are unremarkable. No pneumothorax or pleural '
            'effusion. Enlarged heart.'
        ),
        None,
        'Multiple prior chest radiographs, most recently ___.',
    ),
    '52884212': (
        (
            'Moderate left apical pneumothorax is new. There is no pulmonary edema. The visualized upper abdomen is '
            'unremarkable. No atelectasis is seen.'
        ),
        'Moderate left apical pneumothorax.',
        None,
        'Prior studies from ___ and ___.',
    ),
    '54128963': (
        (
            'Focal airspace disease is seen at the left base. A large effusion on the right cannot be excluded. '
            'Heart size is normal. No atelectasis is seen.'
        ),
        'New focal left basilar airspace disease. A large effusion on the right cannot be excluded.',
        None,
        'None.',
    ),
    '54524432': (
        'An airspace opacity is seen in the left lower lobe. Heart size is normal.',
        'Left lower lobe airspace opacity.',
        None,
        '___',
    ),
    '54546524': (
        (
            'A right internal jugular central venous catheter terminates in the mid SVC. Enlarged heart is again '
            'noted. Lung volumes are low, which accentuates the bronchovascular markings. The cardiomediastinal '
            'silhouette is within normal limits.'
        ),
        'Enlarged heart.',
        None,
        'None.',
    ),
    '54918259': (
        (
            'Lingular pneumonia is present. Focal left basilar airspace disease has cleared. The visualized osseous '
            'structures are unremarkable. No signs of pulmonary edema or pleural effusions.'
        ),
        'Findings concerning for lingular pneumonia.',
        None,
        'Prior studies from ___ and ___.',
    ),
    '55540905': (  # wet_read
        (
            'A left-sided pacemaker is in place with leads in the right atrium and right ventricle. Multifocal left '
            'upper lobe pneumonia is present. The visualized upper abdomen is unremarkable. Lung volumes are normal. '
            'The cardiomediastinal silhouette is within normal limits. The heart is not enlarged.'
        ),
        'Multifocal left upper lobe pneumonia.',
        None,
        '___',
    ),
    '55604759': (  # concusion
        (
            'A nasogastric tube courses below the diaphragm with its tip in the stomach. A left-sided pacemaker is '
            'in place with leads in the right atrium and right ventricle. A small effusion is present at the left '
            'costophrenic angle. No acute osseous abnormality is seen. The visualized osseous structures are '
            'unremarkable. There is no pneumothorax. The lungs are clear.'
        ),
        None,
        None,
        'None.',
    ),
    '55861230': (  # inline_header
        (
            'New left lower lobe opacity. The heart is not enlarged. Negative for pneumonia. There are mild '
            'degenerative changes in the thoracic spine.'
        ),
        'New left lower lobe opacity.',
        None,
        'None.',
    ),
    '56265064': (
        (
            'There is a left mid lung hazy opacity. Findings are consistent with lingular pneumonia. Interval '
            'resolution of right lower lobe plate-like atelectasis. There is no pneumothorax. Heart size is normal.'
        ),
        '1. New left mid lung hazy opacity. 2. Lingular pneumonia.',
        None,
        'Prior studies from ___ and ___.',
    ),
    '57102878': (  # crlf
        None,
        None,
        (
            'Comparison is made to the study from ___.\nEnlarged heart is present. There is mild bilateral perihilar '
            'edema. Lung volumes are normal. There is no focal consolidation, pleural effusion or pneumothorax. No '
            'evidence of pneumonia.\nEnlarged heart. Mild bilateral perihilar edema.'
        ),
        None,
    ),
    '57641652': (
        (
            'Bibasilar plate-like atelectasis is present. Lung volumes are normal. There is no pneumothorax. The '
            'visualized upper abdomen is unremarkable.'
        ),
        'New bibasilar plate-like atelectasis.',
        None,
        'None.',
    ),
    '57784686': (  # title_line
        None,
        None,
        (
            'Dense bibasilar airspace consolidation cannot be excluded. Heart size is normal. There are mild '
            'degenerative changes in the thoracic spine. No pneumothorax or pleural effusion. The visualized osseous '
            'structures are unremarkable.\nDense bibasilar airspace consolidation cannot be excluded.'
        ),
        'None.',
    ),
    '58019760': (
        (
            'A small pneumothorax is seen on the right. The cardiomediastinal silhouette is within normal limits. '
            'The lungs are clear without focal consolidation. Lung volumes are normal.'
        ),
        'Small right pneumothorax.',
        None,
        'Prior studies from ___ and ___.',
    ),
    '58097107': (
        None,
        (
            'Severe bilateral perihilar edema is present. Bibasilar plate-like atelectasis has cleared. The '
            'visualized osseous structures are unremarkable. There are mild degenerative changes in the thoracic '
            'spine. No acute osseous abnormality is seen. No pneumothorax or pleural effusion. Severe bilateral '
            'perihilar edema.'
        ),
        None,
        'None.',
    ),
    '58181209': (  # coinclusion
        (
            'Right middle lobe subsegmental atelectasis cannot be excluded. The visualized upper abdomen is '
            'unremarkable. There is no pneumothorax. The visualized osseous structures are unremarkable. No acute '
            'osseous abnormality is seen.'
        ),
        None,
        None,
        'None.',
    ),
    '58254943': (
        (
            'Plate-like atelectasis is seen in the right lower lobe. The visualized upper abdomen is unremarkable. '
            'The cardiomediastinal silhouette is within normal limits. There is no pulmonary edema. There are mild '
            'degenerative changes in the thoracic spine.'
        ),
        'Right lower lobe plate-like atelectasis.',
        None,
        'Chest radiograph from ___.',
    ),
    '58584024': (
        None,
        (
            'Multifocal right middle lobe pneumonia is present. There is a right perihilar opacity. There is no '
            'pulmonary edema. Lung volumes are low, which accentuates the bronchovascular markings. Findings '
            'concerning for multifocal right middle lobe pneumonia. New right perihilar opacity.'
        ),
        None,
        'Multiple prior chest radiographs, most recently ___.',
    ),
    '58881183': (  # clinical_questions
        'New dense lingular consolidation. There is no pulmonary edema. Heart size is normal.',
        'Dense lingular consolidation.',
        None,
        'None.',
    ),
    '59067458': (  # custom_section
        None,
        (
            'There is right basilar plate-like atelectasis. The visualized upper abdomen is unremarkable. There is '
            'no pneumothorax. Right basilar plate-like atelectasis.'
        ),
        None,
        'Prior studies from ___ and ___.',
    ),
}


def _read(mimic_sample: MimicSample) -> dict[str, dict]:
    """Each report through the reader's own stage (bytes, decoding, line ends), by study id."""
    records = {}
    for path in sorted((mimic_sample.root / "files").rglob("s*.txt")):
        record = ReportStage().process({"_report_file": str(path), "study_id": int(path.stem[1:])})
        records[path.stem[1:]] = record
    return records


def test_the_sample_places_every_layout(mimic_sample: MimicSample) -> None:
    assert mimic_sample.layouts == LAYOUTS
    assert mimic_sample.missing_report not in LAYOUTS.values()


def test_every_sample_report_has_the_official_sections(mimic_sample: MimicSample) -> None:
    records = _read(mimic_sample)
    assert set(records) == set(EXPECTED)
    for study, record in records.items():
        got = (record["findings"], record["impression"], record["last_paragraph"],
               report_sections(record["report"], f"s{study}").comparison)
        assert got == EXPECTED[study], study


@pytest.mark.parametrize("layout", ["crlf", "ndication", "concusion", "coinclusion", "custom_span",
                                    "custom_section"])
def test_the_layouts_the_old_reader_got_wrong(mimic_sample: MimicSample, layout: str) -> None:
    study = str(LAYOUTS[layout])
    record = _read(mimic_sample)[study]
    assert (record["findings"], record["impression"], record["last_paragraph"]) == EXPECTED[study][:3]


def test_built_rows_carry_the_official_sections(mimic_sample: MimicSample, mimic_build) -> None:
    rows = read_records(mimic_build.out, "mimic").values()
    assert rows
    for row in rows:
        expected = EXPECTED[str(row["study_id"])]
        assert (row["findings"], row["impression"], row["last_paragraph"]) == expected[:3], row["study_id"]
    assert {str(r["study_id"]) for r in rows} & {str(s) for s in LAYOUTS.values()}


def _stage(tmp_path, data: bytes, study: int = 50414267) -> dict:
    path = tmp_path / f"s{study}.txt"
    path.write_bytes(data)
    return ReportStage().process({"_report_file": str(path), "study_id": study})


@pytest.mark.parametrize(("encode", "notes"), [
    (lambda t: t.encode(), []),
    (lambda t: t.replace("\n", "\r\n").encode(), ["report_crlf"]),
    (lambda t: t.replace("\n", "\r").encode(), ["report_crlf"]),
    (lambda t: b"\xef\xbb\xbf" + t.encode(), ["report_bom"]),
    (lambda t: b"\xef\xbb\xbf" + t.replace("\n", "\r\n").encode(), ["report_bom", "report_crlf"]),
])
def test_line_ends_and_a_bom_change_neither_sections_nor_text(tmp_path, encode, notes) -> None:
    text = SAMPLE_REPORT + " \n ADDENDUM:  Seen again.\n \n Small right effusion.\n"
    record = _stage(tmp_path, encode(text))
    assert record["report"] == text
    assert (record["findings"], record["impression"], record["last_paragraph"]) == (
        SAMPLE_FINDINGS, "Large left pleural effusion", None)
    assert record.get("_notes", []) == notes
    headerless = " " * 33 + "FINAL REPORT\n PA and lateral.\n \n No effusion.\n"
    assert _stage(tmp_path, encode(headerless))["last_paragraph"] == "No effusion."


def test_bytes_that_are_not_utf8_are_noted_and_replaced(tmp_path) -> None:
    record = _stage(tmp_path, SAMPLE_REPORT.replace("Large left", "Large\xa0left").encode("latin-1"))
    assert record["_notes"] == ["report_not_utf8"]
    assert record["impression"] == "Large\ufffdleft pleural effusion"
    assert record["findings"].startswith("Cardiac size cannot be evaluated. Large\ufffdleft pleural effusion")


def test_studies_under_an_official_rule_are_noted(tmp_path) -> None:
    assert _stage(tmp_path, SAMPLE_REPORT.encode(), 51410602)["_notes"] == ["report_custom_rule_span"]
    assert _stage(tmp_path, SAMPLE_REPORT.encode(), 59067458)["_notes"] == ["report_custom_rule_section_not_found"]
