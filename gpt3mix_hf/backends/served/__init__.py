"""Served engines: an OpenAI-compatible server (vLLM, ...) or text-generation-inference, and their transport
(client, retries, request cache, usage, credentials)."""
