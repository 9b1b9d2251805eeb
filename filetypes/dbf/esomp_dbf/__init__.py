"""E-SOMP DBF engine: read, write and split dBase III exchange files at the byte level."""
from esomp_dbf.reader import EOF_BYTE, DbfError, DbfFile, Field, Invalid
from esomp_dbf.split import (
    CodedPartition,
    EncodedKeys,
    KeyCodes,
    SplitResult,
    partition,
    partition_codes,
    record_bytes,
    record_view,
    split,
    split_to_dir,
    write_records,
)
from esomp_dbf.values import decode_value
from esomp_dbf.writer import (
    encode_record,
    header_bytes,
    patched_header,
    record_length,
    write_dbf,
    write_like,
)

__version__ = "0.1.0"

__all__ = [
    "EOF_BYTE",
    "DbfError",
    "CodedPartition",
    "DbfFile",
    "EncodedKeys",
    "KeyCodes",
    "Field",
    "Invalid",
    "SplitResult",
    "decode_value",
    "encode_record",
    "header_bytes",
    "partition",
    "partition_codes",
    "patched_header",
    "record_bytes",
    "record_view",
    "record_length",
    "split",
    "split_to_dir",
    "write_dbf",
    "write_like",
    "write_records",
]
