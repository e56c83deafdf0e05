"""``python -m rpilinkd.config``: print the example configuration (every key, documented)."""

from rpilinkd.config.rendering import example_toml

print(example_toml(), end="")
