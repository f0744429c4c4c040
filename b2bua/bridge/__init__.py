"""The back-to-back manager: one Call per bridged call, owning its legs."""
