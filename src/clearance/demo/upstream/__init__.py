"""The built-in demo upstream: both provider APIs, deterministic demo text, simulated faults.

See `clearance.demo.upstream.app` for the endpoints and the `x-demo-fault` header.
"""

from clearance.demo.upstream.app import (
    DEMO_MODELS,
    FAULT_HEADER,
    DemoUpstream,
    Fault,
    SeenRequest,
    demo_upstream_app,
)

__all__ = [
    "DEMO_MODELS",
    "FAULT_HEADER",
    "DemoUpstream",
    "Fault",
    "SeenRequest",
    "demo_upstream_app",
]
