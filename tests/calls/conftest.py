from tests.calls.crash_support import serve_factory, webhook_receiver  # noqa: F401  (fixtures)
from tests.calls.support import telephony  # noqa: F401  (fixture)
from tests.sip.conftest import sipp  # noqa: F401  (fixture)
