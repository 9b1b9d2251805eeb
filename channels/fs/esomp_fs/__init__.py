"""E-SOMP file channels: collect from and deliver to directories, FTP, SFTP and memory:// through fsspec."""
from esomp_fs.channel import CollectError, CollectReport, DeliveryError, FileRecord, FsChannel, Receipt
from esomp_fs.options import FsOptions, UnpackOptions, mask_url
from esomp_fs.unpack import UnpackError, unpack

__all__ = ["CollectError", "CollectReport", "DeliveryError", "FileRecord", "FsChannel", "FsOptions", "Receipt",
           "UnpackError", "UnpackOptions", "mask_url", "unpack"]
