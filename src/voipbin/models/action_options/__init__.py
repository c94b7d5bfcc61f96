"""One pydantic option model per flow action type, one module per action family.

``registry.OPTION_MODELS`` maps type → model (import it via ``voipbin.models.actions``). This
``__init__`` stays empty so ``models.address`` can import ``errors``/``fields`` without a cycle.
"""
