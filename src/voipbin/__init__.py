"""voipbin: a self-hostable platform for AI voice agents on phone calls (VoIPBIN v1.0 API compatible)."""

__version__ = "0.1.0"
