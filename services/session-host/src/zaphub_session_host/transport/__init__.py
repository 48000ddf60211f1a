"""WhatsApp transports: the interface (base), the simulator (sim) and the real one (neonize)."""
