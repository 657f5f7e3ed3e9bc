"""Admission webhooks: AdmissionReviews answered by the same engine (see `webhooks.py`)."""
