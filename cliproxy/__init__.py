"""cliproxy: one local endpoint for the OpenAI, Anthropic and Gemini dialects, routed to any provider."""

__version__ = "0.1.0"
