"""convohook: Instagram DMs to reliable, signed Conversation Opened webhooks."""

__version__ = "0.1.0"
