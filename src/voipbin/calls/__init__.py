"""Call manager: call state machine, routing (numbers, extensions, trunks), bridging, recording."""
