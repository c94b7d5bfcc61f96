from tests.api.support import api, settings  # noqa: F401  (fixtures)
from tests.calls.crash_support import serve_factory  # noqa: F401  (fixture)
