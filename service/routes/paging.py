"""The paging of every list route (documents, jobs, training runs)."""

from fastapi import Query

PageLimit = Query(100, ge=1, le=1000)
PageOffset = Query(0, ge=0, le=2**62)  # SQLite integers are 64-bit
