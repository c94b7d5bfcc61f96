"""The API's JSON shapes as pydantic models: addresses, actions and one option model per action type."""
