"""State that must outlive one request and follow a conversation to whichever replica serves it (see `mirror`)."""
