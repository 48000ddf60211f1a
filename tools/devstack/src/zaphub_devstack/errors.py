"""Errors of the embedded servers and the stack."""


class ServerError(RuntimeError):
    """An embedded server did not start or stop as expected."""
