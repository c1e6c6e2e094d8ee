import sys

from mrsbench.cli import main

sys.exit(main())
