"""Who may call and what it costs: keys, authentication, rate limits, usage accounting and spend."""
