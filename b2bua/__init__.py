"""b2bua: a SIP back-to-back user agent built on Twisted."""

__version__ = "0.1.0"
