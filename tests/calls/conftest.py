from tests.calls.support import telephony  # noqa: F401  (fixture)
from tests.sip.conftest import sipp  # noqa: F401  (fixture)
