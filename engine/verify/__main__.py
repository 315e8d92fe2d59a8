import sys

from engine.verify.cli import main

sys.exit(main())
