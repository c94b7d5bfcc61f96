from tests.api.support import api, settings  # noqa: F401  (fixtures)
