"""Meta's side of the wire: webhook signatures, tolerant notification parsing, test builders.

Everything here is pure so the receiver, the processor, the simulator and the tests share one
understanding of Meta's shapes without any of them touching the network.
"""
