"""``python -m ganctl`` and the ``ganctl`` script.

The signal policy (:mod:`ganctl.interrupts`) is installed before the CLI and its libraries are
imported, so a Ctrl-C at any instant of start-up gives one line, never a traceback.
"""


def main() -> None:
    import sys

    from ganctl import interrupts

    interrupts.install()
    try:
        from ganctl.cli import main as cli_main

        cli_main()
    except interrupts.Interrupt as stop:  # before a command began (imports, parsing the command line)
        interrupts.caught()
        print(f"error: {stop.name} received: stopped before the command began; nothing was written.", file=sys.stderr)
        sys.exit(stop.exit_code)
    finally:  # the command is over (whatever its exit code): a signal during shutdown changes nothing
        interrupts.finished()


if __name__ == "__main__":
    main()
