from tests.calls.support import telephony  # noqa: F401  (fixture)
