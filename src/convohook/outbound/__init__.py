"""The only code that opens outbound sockets: webhook attempts (SSRF-guarded) and the Graph API."""
