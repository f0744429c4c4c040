"""RFC 3261 section 12 dialogs: identity, state, route sets (pure, no Twisted)."""
