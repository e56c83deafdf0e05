"""MQTT telemetry: availability, state, stats and events, with Home Assistant discovery."""
