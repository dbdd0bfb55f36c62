"""Built-in backends. Each module is an ordinary pluggy plugin with a ``multiloop_backends`` hook, registered
by the registry exactly as an entry-point plugin would be; the core never imports them by name."""
