"""PostQued's HTTP API as data: the operations table (``operations.py``) and the answer-shape checks."""
