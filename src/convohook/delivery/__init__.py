"""Outbound delivery: Standard Webhooks signing, the retry policy, the SSRF guard and the transport.

The dispatcher composes these; everything here except the transport is pure and has no I/O.
"""
