"""A config written the way CLIProxyAPI's example is: 2-space mappings, `  - "x"` sequences,
double-quoted strings, and comments everywhere (above keys, after values, commented-out blocks,
inside nested maps and sequences). `SECRET_TOKEN` is replaced by a management secret hash."""

SECRET_TOKEN = "@@SECRET_HASH@@"

STYLED_CONFIG = """\
# Server host/interface to bind to. Default is empty ("") to bind all interfaces.
# Use "127.0.0.1" or "localhost" to restrict access to local machine only.
host: "127.0.0.1"

# Server port
port: 8317

# TLS settings for HTTPS.
tls:
  enable: false
  cert: ""
  key: ""

# Management API settings
remote-management:
  # Whether to allow remote (non-localhost) management access.
  allow-remote: false

  # Management key. If a plaintext value is provided here, it will be hashed on startup.
  secret-key: "@@SECRET_HASH@@"

  # Disable the bundled management control panel.
  disable-control-panel: false
  # disable-auto-update-panel: false

# Authentication directory (supports ~ for home directory)
auth-dir: "./auths"

# API keys for authentication
api-keys:
  - "sk-client-laptop-0001" # the laptop
  - "sk-client-server-0002"
  # - "sk-client-retired-0003"

# Enable debug logging
debug: false

# Enable pprof HTTP debug server (host:port). Keep it bound to localhost for safety.
pprof:
  enable: false
  addr: "127.0.0.1:8316"

# When true, write application logs to rotating files instead of stdout
logging-to-file: false

# When false, disable in-memory usage statistics aggregation
usage-statistics-enabled: false

# Proxy URL. Supports socks5/http/https protocols. Example: socks5://user:pass@192.168.1.1:1080/
proxy-url: ""

# When true, unprefixed model requests only use credentials without a prefix.
force-model-prefix: false

# Number of additional credential retry rounds.
request-retry: 3

# Maximum cooldown wait in seconds between retry rounds.
max-retry-interval: 30

# Quota exceeded behavior
quota-exceeded:
  switch-project: true # Whether to automatically switch to another project when a quota is exceeded
  switch-preview-model: true # Whether to automatically switch to a preview model

# Routing strategy for selecting credentials when multiple match.
routing:
  strategy: "round-robin" # round-robin (default), weighted-round-robin, fill-first
  # Enable universal session-sticky routing for all clients.
  session-affinity: false # default: false
  # How long session-to-auth bindings are retained. Default: 1h
  session-affinity-ttl: "1h"

# When true, enable authentication for the WebSocket API (/v1/ws).
ws-auth: true

# Streaming behavior (SSE keep-alives + safe bootstrap retries).
# streaming:
#   keepalive-seconds: 15   # Default: 0 (disabled). <= 0 disables keep-alives.
#   bootstrap-retries: 1    # Default: 0 (disabled). Retries before first byte is sent.

# Gemini API keys
gemini-api-key:
  - api-key: "AIzaSy-gemini-0001"
    prefix: "test" # optional: require calls like "test/gemini-3-pro-preview"
    models:
      - name: "gemini-2.5-flash" # upstream model name
        alias: "gemini-flash"    # client alias mapped to the upstream model
        thinking:                # optional: exact thinking capability
          levels: ["high", "medium", "low", "none", "auto"]
    excluded-models:
      - "gemini-2.5-pro"     # exclude specific models from this provider (exact match)
      - "*-preview"          # wildcard matching suffix

# Claude API keys
claude-api-key:
  - api-key: "sk-ant-claude-0001" # use the official claude API key, no need to set the base url
  - api-key: "sk-ant-claude-0002"
    weight: 5 # optional: weighted-round-robin share; omitted defaults to 1
    base-url: "https://claude.example.com" # use the custom claude API endpoint
    headers:
      X-Custom-Header: "custom-value"
      # Values starting with "$" dynamically copy the header value from downstream client requests.
    models:
      - name: "claude-3-5-sonnet-20241022" # upstream model name
        alias: "claude-sonnet-latest"      # client alias mapped to the upstream model

# Codex API keys
# codex-api-key:
#   - api-key: "sk-atSM..."
#     base-url: "https://www.example.com" # use the custom codex API endpoint

# OpenAI compatibility providers
openai-compatibility:
  - name: "openrouter" # The name of the provider; it will be used in the user agent and other places.
    base-url: "https://openrouter.ai/api/v1" # The base URL of the provider.
    headers:
      X-Custom-Header: "custom-value"
    api-key-entries:
      - api-key: "sk-or-v1-0001"
        proxy-url: "socks5://proxy.example.com:1080" # optional: per-key proxy override
      - api-key: "sk-or-v1-0002"
    models: # The models supported by the provider.
      - name: "moonshotai/kimi-k2:free" # The actual model name.
        alias: "kimi-k2" # The alias used in the API.

# Payload rules
payload:
  default: # Default rules only set parameters when they are missing in the payload.
    - models:
        - name: "gemini-2.5-pro" # Supports wildcards (e.g., "gemini-*")
          protocol: "gemini" # restricts the rule to a specific protocol
      params: # JSON path (gjson/sjson syntax) -> value
        "generationConfig.thinkingConfig.thinkingBudget": 32768

# Global OAuth model name aliases (per channel)
# oauth-model-alias:
#   codex:
#     - name: "gpt-5"
#       alias: "g5"
"""
