"""``python -m alae_fast.cli`` (the form torchrun's ``-m`` takes): the ``alae-fast`` command."""

import sys

from . import console_main

sys.exit(console_main())
