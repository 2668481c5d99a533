"""Use case B: real-time fraud detection on card transactions (docs/fraud.md)."""
