"""The gateway: an OpenAI- and Anthropic-compatible proxy that enforces the policy."""
