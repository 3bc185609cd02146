"""The argument parser every drlab command uses (the top-level CLI, sweep, tune)."""

import argparse

from drlab.errors import DrlabError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (and exit status 2)."""

    def error(self, message):
        raise DrlabError(f"{message} (see `{self.prog} --help`)")
