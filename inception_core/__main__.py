import sys

from inception_core.cli import main

sys.exit(main())
