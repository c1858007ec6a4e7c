"""Where the monthly files come from: the publisher (download: source.py, http.py) or the
landing area (landing.py)."""

from taxi_platform.sources.source import DownloadedFile, TaxiSourceResource

__all__ = ["DownloadedFile", "TaxiSourceResource"]
