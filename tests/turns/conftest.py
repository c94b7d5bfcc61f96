from tests.calls.support import telephony  # noqa: F401  (fixture)
from tests.flow.conftest import env  # noqa: F401  (fixture)
