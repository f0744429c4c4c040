"""SIP wire format: messages, headers and URIs (pure, no Twisted)."""
