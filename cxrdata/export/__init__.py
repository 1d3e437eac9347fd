"""Chat / instruction exports of finished builds for VLM fine-tuning (``cxrdata export chat``, docs/export.md)."""
