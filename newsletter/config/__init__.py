"""newsletter.toml as a frozen Config. The package's public face: callers import from here,
not from its modules (settings, load, the per-section parsers)."""

from newsletter.config.load import load_config, parse_config
from newsletter.config.reach import ReachSettings
from newsletter.config.settings import Config, FeedConfig, WebSettings

__all__ = ["Config", "FeedConfig", "ReachSettings", "WebSettings", "load_config", "parse_config"]
