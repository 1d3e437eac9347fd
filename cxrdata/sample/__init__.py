"""Synthetic raw datasets in the exact on-disk formats of FORMATS.md (no real patient data anywhere).

``chest`` draws chest radiographs and names their anatomy, ``lesions`` draws the 8 pathologies,
``reports`` writes MIMIC-CXR report text, ``mimic`` writes a MIMIC-CXR-JPG + MS-CXR tree and
``bundled`` caches generated samples for the CLI and the tests.
"""
