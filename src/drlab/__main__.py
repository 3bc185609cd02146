"""`python -m drlab ...` runs the same command line as `drlab ...`."""

from drlab.cli import main

raise SystemExit(main())
