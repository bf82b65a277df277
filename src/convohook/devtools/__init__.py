"""Developer tools: the demo, the DM simulator and a local stand-in for the Instagram Graph API."""
