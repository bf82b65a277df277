"""HTTP: thin routes over the use cases (inbound receiver, API, capture bots, health)."""
