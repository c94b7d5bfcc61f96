"""``python -m voipbin.phone --number +15559876543 ...`` (same as ``voipbin phone``)."""

import sys

from voipbin.phone.cli import main

sys.exit(main())
