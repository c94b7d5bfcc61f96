"""Events: in-process bus now; webhook delivery and WebSocket fan-out subscribe to it."""
