"""A terminal for progress tests: text kept in memory, a clock the test moves, the lines a terminal would show."""
import fcntl
import io
import struct
import termios


class FakeTerminal(io.StringIO):
    """isatty() is true; fileno() is fd when given (a real pseudo-terminal whose size the test sets with
    set_columns), else unsupported as for any StringIO."""

    def __init__(self, fd=None):
        super().__init__()
        self.fd = fd

    def isatty(self):
        return True

    def fileno(self):
        if self.fd is None:
            raise io.UnsupportedOperation("fileno")
        return self.fd


def set_columns(fd, columns):
    """Resize the pseudo-terminal fd to columns (24 rows)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def drawn_lines(text):
    """The lines a terminal shows: every \\r starts a redraw, every \\n ends a line."""
    return [part for line in text.split("\n") for part in line.split("\r") if part]
