"""E-SOMP trust file management (信托文件管理): the trust business type's plan, processing and sending."""

__version__ = "0.1.0"
