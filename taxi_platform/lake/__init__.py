"""The data lake: where each month's published file is kept as an object (a local folder by
default, a GCS bucket in the cloud)."""

from taxi_platform.lake.base import LakeObject, LakeResource, LocalLakeResource

__all__ = ["LakeObject", "LakeResource", "LocalLakeResource"]
