import sys

from rigserve.cli import main

sys.exit(main())
