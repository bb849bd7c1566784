"""nasforge: the Python client of a nasforge controller, and a worker SDK for training
candidates with your own code.

    import nasforge
    client = nasforge.Client("127.0.0.1:50051")
    nasforge.worker.run(train, controller="127.0.0.1:50051")   # see nasforge.worker
"""
from nasforge.client import Client, parse_objectives, parse_where  # noqa: F401
from nasforge.errors import NasforgeError  # noqa: F401
from nasforge import worker  # noqa: F401

__all__ = ["Client", "NasforgeError", "worker", "parse_where", "parse_objectives"]
