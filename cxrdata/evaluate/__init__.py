"""Evaluation: phrase-grounding metrics (CNR, mIoU), the Oracle heatmap and bootstrap summaries."""
