"""Chapter 08: key considerations (database connections, thread safety, ASGI servers), measured."""
