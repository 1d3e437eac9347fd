"""Decode JPEG / 16-bit PNG / DICOM to display-ready 8-bit grayscale, resize, encode."""
