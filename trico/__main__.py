"""`python -m trico` is the same as the `trico` command."""

import sys

from trico.cli import main

sys.exit(main())
