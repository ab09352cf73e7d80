import sys

from tinyir.cli import main

sys.exit(main())
