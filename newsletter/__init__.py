"""newsletter: a monthly email newsletter, from a Markdown draft and feeds to the inbox."""

__version__ = "0.1.0"
