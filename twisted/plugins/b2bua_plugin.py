"""twistd dropin: makes ``twistd -n b2bua --config etc/b2bua.toml`` work.

This directory and ``twisted/`` must NOT have an ``__init__.py``: Twisted's own
``twisted.plugins`` package extends its ``__path__`` with every ``twisted/plugins``
directory found on ``sys.path``.
"""

from twisted.application.service import ServiceMaker

b2bua = ServiceMaker(
    "b2bua",
    "b2bua.service",
    "SIP back-to-back user agent",
    "b2bua",
)
