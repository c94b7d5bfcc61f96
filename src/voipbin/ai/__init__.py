"""AI: the LLM interface and its provider adapters (``ai.llm``), and the provider registry that
validates ``engine_model`` values and builds adapters (``ai.registry``)."""
