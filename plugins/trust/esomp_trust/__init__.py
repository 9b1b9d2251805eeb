"""E-SOMP trust file management (信托文件管理): the trust business type's plan, processing and sending."""
from esomp_trust.inputs import account_maps, collected_inputs
from esomp_trust.models import Package as PackageRow, Receipt as ReceiptRow
from esomp_trust.options import TrustOptions, load_options

__version__ = "0.1.0"

# Other distributions (the benchmark's plain-Python baseline, the dashboard's reads of packages and receipts) use
# only these names: see docs/plugins.md, "Boundaries".
__all__ = ["PackageRow", "ReceiptRow", "TrustOptions", "account_maps", "collected_inputs", "load_options"]
