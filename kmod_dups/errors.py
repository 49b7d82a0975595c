"""The one exception type the CLI turns into a one-line error."""


class UserError(Exception):
    """Bad input or a broken environment: the message says what and the fix.

    The CLI prints it as ``kmod-dups: error: <message>`` and exits non-zero,
    without a traceback.
    """

    exit_code = 2
