"""Inbound APIs of other shapes than Chat Completions, served through hub.gateway.chat.run_chat."""
