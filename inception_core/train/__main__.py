import sys

from inception_core.train.runner import main

sys.exit(main())
