"""The closed vocabularies behind the card's ClassLabels: the names agree with the readers' and the sample writers'
own lists, every schema's declarations resolve, the card's feature YAML is exactly what `datasets` writes and
reads, and the write-time check takes nothing but an exact name."""

from __future__ import annotations

import datasets
import pytest
import yaml

from cxrdata import vocabulary
from cxrdata.io.card_meta import _license_fields, card_sources, credentialed, size_category, sources_used
from cxrdata.io.class_labels import REASON, ClassLabelCheck, class_names, outside_vocabulary, with_class_labels
from cxrdata.io.hub_features import features_yaml
from cxrdata.io.schema import available, image_columns_as_paths, load_schema
from cxrdata.sample.imagenome import GOLD_NAMES, SILVER_NAMES
from cxrdata.sample.vindr import IMAGE_LABELS_TRAIN, LOCAL_LABELS
from cxrdata.sources.chestxray14_rows import BOX_CLASSES as NIH_BOX_CLASSES
from cxrdata.sources.chestxray14_rows import SEXES, VIEWS
from cxrdata.sources.mimic import VIEW_POSITIONS
from cxrdata.sources.registry import ENTRIES
from cxrdata.sources.vindr import BOX_CLASSES as VINDR_BOX_CLASSES
from cxrdata.stage import Reject


def test_vocabularies_agree_with_the_lists_readers_and_samples_use():
    assert class_names("pathologies") == vocabulary.pathologies() and len(class_names("pathologies")) == 8
    assert class_names("locations") == vocabulary.locations() and len(class_names("locations")) == 27
    assert class_names("view-positions") == VIEW_POSITIONS
    assert set(class_names("imagenome-anatomy")) == set(SILVER_NAMES) and len(SILVER_NAMES) == 36
    assert set(GOLD_NAMES) <= set(SILVER_NAMES)
    assert set(class_names("vindr-box-labels")) == set(LOCAL_LABELS) == set(VINDR_BOX_CLASSES.local_labels)
    assert class_names("vindr-image-labels") == IMAGE_LABELS_TRAIN  # the real files' column order
    assert class_names("vindr-image-labels")[:22] == class_names("vindr-box-labels")  # one id per class in both
    assert tuple(class_names("chestxray14-box-labels")) == NIH_BOX_CLASSES.local_labels
    assert class_names("chestxray14-findings") == (*NIH_BOX_CLASSES.local_labels, *NIH_BOX_CLASSES.image_level_labels)
    assert len(class_names("chestxray14-findings")) == 15
    assert (class_names("chestxray14-views"), class_names("chestxray14-sexes")) == (VIEWS, SEXES)


@pytest.mark.parametrize("name", available())
def test_card_features_are_what_datasets_writes_and_reads(name):
    schema = load_schema(name)
    for variant in (schema, image_columns_as_paths(schema)):
        features = with_class_labels(variant.features, variant)
        expected = datasets.Features.from_dict(features)
        assert features_yaml(features) == expected._to_yaml_list()
        card_yaml = yaml.safe_dump(features_yaml(features), sort_keys=False)  # as the card writes it: key order
        assert datasets.Features._from_yaml_list(yaml.safe_load(card_yaml)) == expected  # matters to datasets


def test_every_table_names_its_hub_tasks_and_every_dataset_has_card_sources():
    tasks = {"object-detection", "zero-shot-object-detection", "image-to-text", "image-classification",  # Hub task
             "text-to-image", "visual-question-answering", "image-text-to-text"}  # ids (huggingface.js packages/tasks)
    for name in available():
        if name != "rejects":
            assert load_schema(name).task_categories and set(load_schema(name).task_categories) <= tasks, name
    data = card_sources()
    for entry in ENTRIES.values():
        for source in entry.source_classes:
            assert source.dataset in data["sources"], f"card_sources.yaml has no entry for {source.dataset}"
    for key, source in data["sources"].items():
        assert source.get("license") is None or source["license"] in data["licenses"], key
        assert all(ref in data["references"] for ref in source["cite"]), key
        assert all(included in data["sources"] for included in source.get("includes", ())), key
    for key, bibtex in data["references"].items():
        assert bibtex.startswith("@") and bibtex.split("{", 1)[1].startswith(f"{key},") and bibtex.endswith("}")


def test_size_categories_are_the_hubs_bins():
    assert [size_category(n) for n in (0, 999, 1000, 9_999, 10_000, 242_072, 1_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]


def record(**columns):
    return {"id": "r1", "split": "test", **columns}


def test_only_an_exact_name_passes_the_write_time_check():
    vindr, prompts = load_schema("vindr"), load_schema("vindr-prompts")
    ok = record(regions=[{"label": "Consolidation"}, {"label": "Rib fracture"}], fused_regions=[],
                image_labels=[{"reader": "R1", "labels": ["COPD", "No finding"]}])
    assert outside_vocabulary(ok, vindr) is None
    assert outside_vocabulary(record(regions=None, fused_regions=[{"label": None}], image_labels=[]), vindr) is None
    for wrong in ("Consolidation ", "consolidation", "5", "Pneumonitis", 5):
        bad = record(regions=[{"label": "Edema"}, {"label": wrong}], fused_regions=[], image_labels=[])
        assert outside_vocabulary(bad, vindr) == (
            f"regions[1].label {wrong!r} is not one of the 22 names of vocabulary vindr-box-labels "
            "(schemas/class_labels.yaml)")
    labels = record(regions=[], fused_regions=[], image_labels=[{"reader": "R2", "labels": ["COPD", "Other disease"]}])
    assert outside_vocabulary(labels, vindr).startswith(
        "image_labels[0].labels[1] 'Other disease' is not one of the 28")
    assert outside_vocabulary(record(class_name="Pleural effusion", pathology="Pleural Effusion",
                                     locations=["left lower", "bibasilar"]), prompts) is None
    assert outside_vocabulary(record(class_name="Pleural effusion", pathology=None,
                                     locations=["left lower", "bilateral base"]), prompts).startswith(
        "locations[1] 'bilateral base' is not one of the 27 names of vocabulary locations")
    check = ClassLabelCheck(schema=prompts)
    out = check.run([record(class_name="Edema", pathology="Edema", locations=["pulmonary"]),
                     record(class_name="Edema", pathology="Oedema", locations=["pulmonary"])])
    assert isinstance(out[0], dict) and isinstance(out[1], Reject)
    assert (out[1].stage, out[1].reason, out[1].record_id, out[1].split) == ("class-labels", REASON, "r1", "test")
    assert "pathology 'Oedema' is not one of the 8 names of vocabulary pathologies" in out[1].detail


def test_licence_fields_for_one_custom_one_hub_and_mixed_licences():
    physionet = {"license": "other", "license_name": "physionet-credentialed-health-data-license-1.5.0",
                 "license_link": "https://physionet.org/about/licenses/physionet-credentialed-health-data-license-150/"}
    assert _license_fields(["ms-cxr", "mimic-cxr-jpg", "mimic-cxr"]) == physionet
    assert _license_fields(["chestx-ray14"]) == {"license": "cc0-1.0"}  # a Hub licence id: no name, no link
    assert _license_fields(["chestx-ray14", "vindr-cxr"]) == {**physionet, "license": ["cc0-1.0", "other"]}
    assert _license_fields(["a-dataset-without-entry"]) == {"license": "unknown"}
    assert credentialed(["vindr-cxr"]) and not credentialed(["chestx-ray14"]) and credentialed(["unknown-one"])
    assert credentialed(["chestx-ray14", "padchest-gr", "padchest"])
    lut_build = {"configs": {"ldm-prompts": {"dataset": "mimic-cxr-jpg", "options": {"lut": "/x/lut.json"}}}}
    assert sources_used(lut_build) == ["mimic-cxr-jpg", "mimic-cxr", "chest-imagenome"]
