import sys

from hopgym.cli import main

sys.exit(main())
