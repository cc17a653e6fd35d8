"""bgen: goal in plain words -> LLM-written drone policy -> sandboxed episodes -> critique -> better policy."""

__version__ = "0.1.0"
