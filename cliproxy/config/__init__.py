"""Config: schema (`model`), loading with path-named errors (`load`), comment-keeping writes (`write`)."""

from cliproxy.config.load import ConfigError, LoadedConfig, load_config, parse_config_text
from cliproxy.config.model import Config

__all__ = ["Config", "ConfigError", "LoadedConfig", "load_config", "parse_config_text"]
