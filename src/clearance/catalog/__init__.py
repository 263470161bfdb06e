"""The model catalog: upstreams, models, classification, fallback chains, suspension."""
