import sys

from txcore.cli import main

sys.exit(main())
