"""E-SOMP sql channel: collect tables and queries of a client's database (the counter system's) as CSV files."""
from esomp_sql.channel import SqlChannel, SqlCollectError, SqlReport, TableOutput, text_of
from esomp_sql.models import MIGRATIONS, Watermark as WatermarkRow
from esomp_sql.options import SqlOptions, TableOptions

__all__ = ["MIGRATIONS", "SqlChannel", "SqlCollectError", "SqlOptions", "SqlReport", "TableOptions", "TableOutput",
           "WatermarkRow", "text_of"]
