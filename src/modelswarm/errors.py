"""The one exception type that reaches the user as a one-line message and exit code 2."""


class UserError(Exception):
    """Bad input: a config key, a file, an expert, a validation example.

    The message names the file (and key or line) and the problem; the CLI prints it on one
    line and exits with status 2. Raised before anything is written where possible.
    """

    def __init__(self, where: object, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")

    def __reduce__(self):
        # raised inside a Ray worker, it is pickled to reach the driver: rebuild it whole
        return (type(self), (self.where, self.problem))


def error_line(exc: BaseException) -> str:
    """'Type: first line of the message', for the journal and the live table."""
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
