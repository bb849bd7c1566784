"""The one exception the client raises: a refused or failed call, with its gRPC status and, for
INVALID_ARGUMENT, the path of the offending field ("budget.max_trials", "metrics[accuracy]")."""
import re

import grpc

# "spec: line 4, column 3: budget.max_trails: unknown field ..." (a YAML spec) or
# "budget.max_trials: must be >= 1"
_WHERE = re.compile(r"^spec: line (\d+)(?:, column (\d+))?: ")
_FIELD = re.compile(r"([A-Za-z_][\w.\[\]@-]*): ")


class NasforgeError(Exception):
    """A call the controller refused or could not answer.

    code: the grpc.StatusCode; code_name: its name ("INVALID_ARGUMENT"); message: the
    controller's explanation; field: the field path the message names first (None when it names
    none); line, column: where in a YAML spec (None otherwise); method: the RPC ("SubmitJob").
    """

    def __init__(self, code, message, method=""):
        self.code = code
        self.code_name = code.name if hasattr(code, "name") else str(code)
        self.message = message or ""
        self.method = method
        rest, self.line, self.column = self.message, None, None
        w = _WHERE.match(rest)
        if w:
            self.line = int(w.group(1))
            self.column = int(w.group(2)) if w.group(2) else None
            rest = rest[w.end():]
        m = _FIELD.match(rest)
        self.field = m.group(1) if m else None
        super().__init__("%s%s: %s" % (method + " " if method else "", self.code_name,
                                        self.message))


def from_rpc_error(err, method=""):
    """A NasforgeError for a grpc.RpcError (a grpc.Call, which carries code() and details())."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    return NasforgeError(code, details, method)
