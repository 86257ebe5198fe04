"""The one error path of every ``mmbackbones`` command.

A user error (:data:`USER_ERRORS`: a bad option, a bad or missing file, a config that does not
parse, a refused argument) is one line ``<prog>: error: <message>`` on stderr and exit code 2;
an environment failure (:data:`ENVIRONMENT_ERRORS`: no network, a download that fails) one line
``<prog>: failed: <message>`` and exit code 1, as is anything else
(``<prog>: failed: <type>: <message>``); ``--debug`` shows
the traceback instead. Light: imports nothing but the standard library and ``CLIError``.
"""
import os
import sys
import urllib.error
from typing import Optional

from ..analysis.common import CLIError, EnvironmentFailure

# Problems the user can fix: one line, exit code 2. Anything else is reported as a failure
# (exit code 1), still in one line unless --debug.
USER_ERRORS = (CLIError, ValueError, KeyError, TypeError, OSError, SyntaxError, ImportError)
# Not the user's mistake though OSErrors: the network or the machine (exit code 1).
ENVIRONMENT_ERRORS = (EnvironmentFailure, ConnectionError, TimeoutError, urllib.error.URLError)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (a KeyError without quotes, a SyntaxError with its
    file and line)."""
    if isinstance(error, SyntaxError) and error.filename and error.filename != '<unknown>':
        text = f'syntax error in {error.filename}, line {error.lineno}: {error.msg}'
    elif isinstance(error, KeyError) and error.args:
        text = str(error.args[0])  # str(KeyError) adds quotes around the message
    else:
        text = str(error) or type(error).__name__
    return ' '.join(text.split())


def is_our_bug(error: BaseException) -> bool:
    """A syntax error in mmbackbones' own files is a bug, not a bad config."""
    filename = getattr(error, 'filename', None) if isinstance(error, SyntaxError) else None
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # mmbackbones/
    return bool(filename) and os.path.abspath(filename).startswith(package + os.sep)


def run_command(prog: str, func, args, debug: bool = False, rerun: Optional[str] = None) -> int:
    """The one error path of every command: ``func(args)``'s return value is the exit code; a
    user error (:data:`USER_ERRORS`) is one line ``<prog>: error: <message>`` on stderr and exit
    code 2; anything else one line ``<prog>: failed: ...`` and exit code 1. ``debug`` re-raises.
    """
    try:
        return func(args) or 0
    except KeyboardInterrupt:
        print(f'{prog}: interrupted', file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `mmbackbones list --timm | head`
        sys.stderr.close()
        return 0
    except Exception as error:  # noqa: BLE001 - the one place that turns errors into messages
        if debug:
            raise
        if isinstance(error, ENVIRONMENT_ERRORS) and not isinstance(error, CLIError):
            print(f'{prog}: failed: {one_line(error)}', file=sys.stderr)
            return 1
        if isinstance(error, USER_ERRORS) and not is_our_bug(error):
            print(f'{prog}: error: {one_line(error)}', file=sys.stderr)
            return 2
        hint = f' (rerun with `{rerun}` for the traceback)' if rerun else ''
        print(f'{prog}: failed: {type(error).__name__}: {one_line(error)}{hint}',
              file=sys.stderr)
        return 1
