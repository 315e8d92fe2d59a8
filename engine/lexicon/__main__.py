"""`python -m engine.lexicon draft SOURCE`: a lexicon extension draft for a source's categories."""
import sys

from engine.lexicon import main

sys.exit(main())
