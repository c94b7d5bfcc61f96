"""The built-in test phone: a scriptable SIP phone for end-to-end tests and ``voipbin phone``.

``TestPhone`` (library, :mod:`voipbin.phone.testphone`) and ``add_phone_parser`` (the CLI
subcommand, :mod:`voipbin.phone.cli`).
"""

from voipbin.phone.cli import add_phone_parser, run_phone
from voipbin.phone.testphone import PhoneCall, PhoneError, TestPhone

__all__ = ["PhoneCall", "PhoneError", "TestPhone", "add_phone_parser", "run_phone"]
