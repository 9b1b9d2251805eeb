"""E-SOMP trust file management (信托文件管理): the trust business type's plan, processing and sending."""
from esomp_trust.inputs import account_maps, collected_inputs
from esomp_trust.options import TrustOptions, load_options

__version__ = "0.1.0"

# Other distributions (the benchmark's plain-Python baseline) use only these names: see docs/plugins.md,
# "Boundaries".
__all__ = ["TrustOptions", "account_maps", "collected_inputs", "load_options"]
